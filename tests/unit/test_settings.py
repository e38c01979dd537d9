"""Settings: every variable documented, parsed and validated; logging carries job ids."""

from __future__ import annotations

import contextvars
import logging
import re
from pathlib import Path

import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsError

from actors.coordinator_config import auto_concurrency
from actors.job_coordinator import config_from_settings
from config.logging import bind_job, job_logger, setup_logging
from config.settings import Settings
from serve_app import absolute_paths

ROOT = Path(__file__).resolve().parents[2]


def test_every_setting_is_documented_in_env_example() -> None:
    documented = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(), re.M))
    assert {name.upper() for name in Settings.model_fields} == documented


def test_env_example_parses_to_the_defaults() -> None:
    parsed = Settings(_env_file=ROOT / ".env.example")
    assert parsed == Settings(_env_file=None)


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {
        "MAX_CONCURRENT_JOBS": "7",
        "JOB_TIMEOUT": "12.5",
        "LOG_LEVEL": "warning",
        "ALLOW_PRIVATE_URLS": "true",
        "MAX_DOWNLOAD_BYTES": "1000",
        "MAX_MEDIA_DURATION_S": "",
        "DATABASE_URL": "postgresql://u:p@db/vpa",
        "QUEUE_POLL_INTERVAL": "5",
    }.items():
        monkeypatch.setenv(key, value)
    s = Settings(_env_file=None)
    assert (s.max_concurrent_jobs, s.job_timeout, s.log_level) == (7, 12.5, "WARNING")
    assert s.allow_private_urls and s.max_download_bytes == 1000
    assert s.max_media_duration_s is None
    assert s.resolved_database_url() == "postgresql://u:p@db/vpa"


@pytest.mark.parametrize(
    "key, value",
    [
        ("MAX_CONCURRENT_JOBS", "0"),
        ("MAX_CONCURRENT_JOBS", "1001"),
        ("MAX_CONCURRENT_JOBS", "many"),
        ("TRANSCRIBER_NUM_GPUS", "0"),
        ("ANALYZER_MIN_REPLICAS", "5"),  # above ANALYZER_MAX_REPLICAS (2)
        ("STAGE_RESOURCES", "not json"),
        ("LOG_LEVEL", "chatty"),
        ("API_PORT", "70000"),
        ("ENABLE_GPU", "maybe"),
        ("RETENTION_DAYS", "-1"),
        ("RETENTION_DAYS", "nan"),
        ("RETENTION_DAYS", "inf"),
        ("RETENTION_DAYS", "36501"),
        ("ARTIFACT_MAX_BYTES", "0"),
        ("ARTIFACT_MAX_BYTES", "-5"),
        ("ARTIFACT_MAX_BYTES", "10GB"),
        ("RETENTION_SWEEP_S", "0"),
        ("RETENTION_SWEEP_S", "-3"),
        ("RETENTION_SWEEP_S", "inf"),
    ],
)
def test_bad_values_are_refused_at_start(
    monkeypatch: pytest.MonkeyPatch, key: str, value: str
) -> None:
    monkeypatch.setenv(key, value)
    with pytest.raises((ValidationError, SettingsError), match=key.lower()):
        Settings(_env_file=None)


@pytest.mark.parametrize(("value", "expected"), [("auto", "auto"), (" AUTO ", "auto"), ("12", 12)])
def test_max_concurrent_jobs_takes_a_number_or_auto(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: object
) -> None:
    monkeypatch.setenv("MAX_CONCURRENT_JOBS", value)
    assert Settings(_env_file=None).max_concurrent_jobs == expected


@pytest.mark.parametrize(
    ("resources", "expected"), [({"CPU": 6.0}, 6), ({"CPU": 0.5}, 1), ({}, 1), ({"CPU": 5e4}, 1000)]
)
def test_auto_concurrency_is_one_job_per_cluster_cpu(
    resources: dict[str, float], expected: int
) -> None:
    assert auto_concurrency(resources) == expected


def test_stage_resources_are_read_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAGE_RESOURCES", '{"clips": {"ffmpeg_node": 1}}')
    assert Settings(_env_file=None).stage_resources == {"clips": {"ffmpeg_node": 1.0}}


def test_debug_forces_debug_logging_and_paths_become_absolute(tmp_path: Path) -> None:
    s = Settings(_env_file=None, debug=True, log_level="ERROR")
    assert s.effective_log_level == "DEBUG"
    rel = absolute_paths(Settings(_env_file=None, database_url="sqlite:///./x/vpa.db"))
    assert rel.database_url.startswith("sqlite:////") and rel.database_url.endswith("/x/vpa.db")
    assert Path(rel.artifact_dir).is_absolute()


def test_log_file_rotates_and_job_lines_carry_the_job_id(tmp_path: Path) -> None:
    log_file = tmp_path / "logs" / "vpa.log"
    setup_logging(Settings(_env_file=None, log_file=str(log_file), log_file_max_bytes=2048))
    try:
        log = job_logger("1234-abcd")
        for i in range(100):
            log.info("stage fetch progress %d", i)
        logging.getLogger("vpa.other").warning("plain line")

        def in_job() -> None:
            bind_job("5678-ef")
            logging.getLogger("pipeline.media.fetch").warning("library line")

        contextvars.copy_context().run(in_job)
        for handler in logging.getLogger("vpa").handlers:
            handler.flush()
        lines = log_file.read_text().splitlines()
        (plain,) = [line for line in lines if "plain line" in line]
        assert " job=- " in plain
        job_lines = [line for line in lines if "stage fetch" in line]
        assert job_lines and all("job=1234-abcd" in line for line in job_lines)
        assert (tmp_path / "logs" / "vpa.log.1").exists()  # rotated
        (library,) = [line for line in lines if "library line" in line]
        assert "job=5678-ef" in library
    finally:
        setup_logging(Settings(_env_file=None, log_file=None))


def test_retention_is_off_by_default_and_reaches_the_coordinator(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    defaults = config_from_settings(Settings(_env_file=None))
    assert (defaults.retention_days, defaults.artifact_max_bytes) == (0.0, None)
    assert defaults.retention_sweep_s == 3600.0
    monkeypatch.setenv("RETENTION_DAYS", "0.5")
    monkeypatch.setenv("ARTIFACT_MAX_BYTES", "1000")
    monkeypatch.setenv("RETENTION_SWEEP_S", "30")
    config = config_from_settings(Settings(_env_file=None))
    assert (config.retention_days, config.artifact_max_bytes, config.retention_sweep_s) == (
        0.5,
        1000,
        30.0,
    )
    monkeypatch.setenv("ARTIFACT_MAX_BYTES", "")
    assert Settings(_env_file=None).artifact_max_bytes is None
