"""The command-line client's pure parts: `-o key=value`, URL or file, the server's error
messages, exit codes, file names of downloads, tables; and its console script."""

from __future__ import annotations

import importlib
import importlib.metadata
import tomllib
from pathlib import Path
from typing import Any

import pytest
import typer
from rich.console import Console

from cli.download import chosen, file_names, safe_name
from cli.errors import EXIT_FAILED, EXIT_OK, detail_of, exit_code_for
from cli.options import is_url, local_file, parse_options, parse_value
from cli.render import artifacts_table, job_details, jobs_table, percent, size

ROOT = Path(__file__).resolve().parents[2]


def test_option_values_are_json_when_they_parse() -> None:
    assert parse_options(
        [
            "max_clips=3",
            "min_confidence=0.5",
            "vad_filter=false",
            "language=en",
            'segments=[{"start": 0, "end": 1}]',
            "initial_prompt=a=b",
            "model_size=",
        ]
    ) == {
        "max_clips": 3,
        "min_confidence": 0.5,
        "vad_filter": False,
        "language": "en",
        "segments": [{"start": 0, "end": 1}],
        "initial_prompt": "a=b",  # split at the first `=` only
        "model_size": "",
    }
    assert parse_value('"3"') == "3"  # quoted: a string after all
    assert parse_value("null") is None
    assert parse_options(None) == {}
    assert parse_options(["max_clips=1", "max_clips=2"]) == {"max_clips": 2}


@pytest.mark.parametrize("pair", ["max_clips", "=3", " =3", ""])
def test_a_malformed_option_is_a_usage_error(pair: str) -> None:
    with pytest.raises(typer.BadParameter, match="key=value"):
        parse_options(["language=en", pair])


def test_url_or_file(tmp_path: Path) -> None:
    assert is_url("https://example.com/v.mp4") and is_url(" HTTP://x") and is_url("upload://1")
    assert not is_url("talk.mp4") and not is_url("ftp://x/y")
    media = tmp_path / "talk.mp4"
    media.write_bytes(b"x")
    assert local_file(str(media)) == media
    with pytest.raises(typer.BadParameter, match="neither an http"):
        local_file(str(tmp_path / "missing.mp4"))
    with pytest.raises(typer.BadParameter):
        local_file(str(tmp_path))  # a directory is no file


def test_the_servers_message_is_found_in_each_error_shape() -> None:
    assert detail_of({"detail": "Job 1 not found"}) == "Job 1 not found"
    validation = {
        "detail": [
            {"loc": ["body", "priority"], "msg": "Input should be less than or equal to 10"},
            {"loc": ["body", "options", "max_clips"], "msg": "Input should be a valid integer"},
        ]
    }
    assert detail_of(validation) == (
        "priority: Input should be less than or equal to 10; "
        "options.max_clips: Input should be a valid integer"
    )
    openai = {"error": {"message": "the API key is not valid", "code": "invalid_api_key"}}
    assert detail_of(openai) == "the API key is not valid"
    assert detail_of(None, "Bad Gateway\n") == "Bad Gateway"
    assert detail_of({}, "") == "(no detail)"


def test_exit_codes_of_a_followed_job() -> None:
    assert exit_code_for("completed") == EXIT_OK == 0
    assert exit_code_for("failed") == exit_code_for("cancelled") == EXIT_FAILED == 1
    assert exit_code_for(None) == 1


def test_download_names_stay_in_the_directory_and_distinct() -> None:
    assert safe_name("../../etc/passwd", "x") == "passwd"
    assert safe_name("..\\..\\win.ini", "x") == "win.ini"
    assert safe_name("..", "fallback") == safe_name("", "fallback") == "fallback"
    artifacts: list[dict[str, Any]] = [
        {"id": "aaaaaaaa-1", "filename": "clip.mp4", "kind": "clip"},
        {"id": "bbbbbbbb-2", "filename": "clip.mp4", "kind": "clip"},
        {"id": "cccccccc-3", "filename": None, "kind": "audio"},
    ]
    assert file_names(artifacts) == ["clip.mp4", "clip-bbbbbbbb.mp4", "cccccccc-3"]
    assert [a["id"] for a in chosen(artifacts, {"audio"})] == ["cccccccc-3"]
    assert chosen(artifacts, set()) == artifacts


def _text(renderable: object) -> str:
    console = Console(width=200, record=True)
    console.print(renderable)
    return console.export_text()


def test_tables() -> None:
    assert percent(42.4) == "42%" and percent(None) == "-" and percent(True) == "-"
    assert [size(912), size(1536), size(3 * 1024**2), size(5 * 1024**4)] == [
        "912 B", "1.5 KiB", "3.0 MiB", "5120.0 GiB"
    ]  # fmt: skip
    job = {
        "id": "0b5e", "job_type": "transcription", "status": "failed", "progress": 37.5,
        "current_stage": "audio", "created_at": "2026-12-01T04:00:00.123Z",
        "youtube_url": "http://x/y.mp4",
    }  # fmt: skip
    text = _text(jobs_table([job], count=7))
    assert "1 of 7 job(s)" in text and "38%" in text and "2026-12-01 04:00:00" in text
    link = "/api/v1/jobs/0b5e/artifacts/9/download"
    art = {"kind": "audio", "filename": "a.wav", "size_bytes": 2048, "download_url": link}
    text = _text(artifacts_table([art], "http://vpa:8000/"))
    assert "http://vpa:8000" + link in text and "2.0 KiB" in text


def test_show_lists_a_diarized_jobs_speakers() -> None:
    job = {"id": "0b5e", "job_type": "transcription", "status": "completed", "speakers": [
        {"speaker": "Speaker 1", "talk_time": 75.4, "turns": 3, "words": 180},
        {"speaker": "Speaker 2", "talk_time": 25.1, "turns": 2, "words": 61},
    ]}  # fmt: skip
    lines = _text(job_details(job, [], "http://vpa:8000")).splitlines()
    cells = {
        line.split("│")[1].strip(): line.split("│")[2:6] for line in lines if "Speaker" in line
    }
    assert [c.strip() for c in cells["Speaker 1"]] == ["1:15", "75%", "3", "180"], cells
    assert [c.strip() for c in cells["Speaker 2"]] == ["0:25", "25%", "2", "61"], cells
    assert "speakers" not in _text(job_details({**job, "speakers": None}, [], "http://vpa:8000"))


def test_the_console_script_is_declared_and_resolves() -> None:
    """`vpa` runs `cli.main:run` (installed: as importlib.metadata says; else as
    pyproject.toml declares), and setuptools packages only cli."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["scripts"] == {"vpa": "cli.main:run"}
    assert project["tool"]["setuptools"]["packages"]["find"]["include"] == ["cli", "cli.*"]
    scripts = importlib.metadata.entry_points(group="console_scripts", name="vpa")
    value = next(iter(scripts)).value if scripts else project["project"]["scripts"]["vpa"]
    module, _, attr = value.partition(":")
    assert callable(getattr(importlib.import_module(module), attr))
    assert "-e ." in (ROOT / "Makefile").read_text()  # `make setup` installs it


def test_the_clients_dependencies_are_the_pinned_ones() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pins = {
        line.split("==")[0].lower(): line.split("#")[0].strip()
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    declared = project["project"]["dependencies"]
    assert declared == [pins[d.split("==")[0].lower()] for d in declared]
    assert {d.split("==")[0] for d in declared} == {"httpx", "websockets", "typer", "rich"}
