"""The pure parts of the command line: `-o key=value` job options, and a URL told apart
from a file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

URL_SCHEMES = ("http://", "https://", "upload://")


def parse_value(text: str) -> Any:
    """A value as JSON when it parses (numbers, booleans, null, lists, objects, quoted
    strings), else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_options(pairs: list[str] | None) -> dict[str, Any]:
    """`["max_clips=3", "language=en"]` → `{"max_clips": 3, "language": "en"}`; a pair
    without `=` or with an empty key is a usage error (exit 2). A repeated key: the last
    one wins."""
    options: dict[str, Any] = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r} is not key=value", param_hint="'-o'")
        options[key] = parse_value(value)
    return options


def is_url(source: str) -> bool:
    """Whether `source` names media by URL (http, https, or an earlier upload)."""
    return source.strip().lower().startswith(URL_SCHEMES)


def local_file(source: str) -> Path:
    """The file `source` names, or a usage error (exit 2) when there is none."""
    path = Path(source).expanduser()
    if not path.is_file():
        raise typer.BadParameter(
            f"{source!r} is neither an http(s):// URL nor a file", param_hint="'SOURCE'"
        )
    return path
