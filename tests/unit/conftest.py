"""Unit tests never start Ray: any attempt fails loudly."""

import pytest


@pytest.fixture(autouse=True)
def _no_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    import ray

    def _refuse(*_a: object, **_k: object) -> None:
        raise RuntimeError("unit tests must not start Ray; move this test to tests/integration")

    monkeypatch.setattr(ray, "init", _refuse)
