"""`Range` headers as the artifact download route reads them (single ranges, RFC 9110)."""

from __future__ import annotations

import pytest

from deployments.ranged import RangeNotSatisfiable, content_disposition, parse_range


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("bytes=0-99", (0, 100)),
        ("bytes=100-", (100, 1000)),
        ("bytes=-10", (990, 1000)),
        ("bytes=-5000", (0, 1000)),
        ("bytes=900-5000", (900, 1000)),
        ("bytes=999-999", (999, 1000)),
        ("bytes=0-1,5-9", None),  # several ranges: the whole object
        ("items=0-9", None),
        ("bytes=9-0", None),  # invalid: ignored
        ("bytes=-", None),
    ],
)
def test_parse_range(header: str | None, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, 1000) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=5000-6000", "bytes=-0"])
def test_unsatisfiable_ranges(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, 1000)


def test_content_disposition_keeps_non_ascii_names() -> None:
    assert content_disposition("clip_01.mp4") == 'attachment; filename="clip_01.mp4"'
    value = content_disposition("café.mp4")
    assert "filename*=utf-8''caf%C3%A9.mp4" in value and 'filename="caf?.mp4"' in value
