"""Unit tests never start Ray: any attempt fails loudly."""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from actors.coordinator_config import CoordinatorConfig
from tests.unit.coordinator_fakes import Harness, MakeHarness


@pytest.fixture(autouse=True)
def _no_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    import ray

    def _refuse(*_a: object, **_k: object) -> None:
        raise RuntimeError("unit tests must not start Ray; move this test to tests/integration")

    monkeypatch.setattr(ray, "init", _refuse)


@pytest.fixture
async def make_harness(tmp_path: Path) -> AsyncIterator[MakeHarness]:
    """Coordinators on a fake clock and a fake stage runner (`coordinator_fakes`), crashed
    at the end of the test."""
    made: list[Harness] = []

    def make(**config: Any) -> Harness:
        harness = Harness(tmp_path, CoordinatorConfig(**config))
        made.append(harness)
        return harness

    yield make
    for harness in made:
        await harness.crash()
