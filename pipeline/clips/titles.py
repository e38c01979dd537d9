"""A clip's title: its chapter's, else its most prominent keywords, else its opening words,
else its time range; never one another clip of the job already has."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MAX_TITLE_CHARS = 60
TITLE_WORDS = 6


def clip_title(
    text: str,
    keywords: list[str],
    analysis: Mapping[str, Any],
    chapter: int | None,
    start: float,
    end: float,
    used: set[str],
) -> str:
    """The first of: chapter title, top keywords, opening words, time range; unused."""
    options = []
    if chapter is not None:
        options.append(_clean(str((analysis.get("chapters") or [])[chapter].get("title") or "")))
    if keywords:
        title = ""
        for keyword in keywords[:3]:
            longer = " · ".join(filter(None, [title, _title_case(keyword)]))
            if len(longer) > MAX_TITLE_CHARS:
                break
            title = longer
        options.append(title or _clean(_title_case(keywords[0])))
    opening = text.split()
    if opening:
        head = " ".join(opening[:TITLE_WORDS]).rstrip(".,;:!?")
        options.append(_clean(head + ("…" if len(opening) > TITLE_WORDS else "")))
    options.append(f"{_clock(start)} to {_clock(end)}")
    usable = [t for t in options if t]
    return next((t for t in usable if t not in used), usable[0])


def _title_case(phrase: str) -> str:
    return " ".join(w[:1].upper() + w[1:] for w in phrase.split())


def _clean(title: str) -> str:
    title = " ".join(title.split())
    if len(title) <= MAX_TITLE_CHARS:
        return title
    return title[: MAX_TITLE_CHARS - 1].rsplit(" ", 1)[0].rstrip(".,;:") + "…"


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}"
