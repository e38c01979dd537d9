"""Alembic migrations on SQLite and on a real PostgreSQL: revision 0001 is today's schema, a
database made before migrations is stamped and keeps every row, later revisions run in one
transaction, and a database vpa does not know is refused (also by main.py, before Ray)."""

from __future__ import annotations

import shutil
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

import main
from storage.db import create_db_engine, init_db
from storage.migrations.errors import IncompleteSchemaError, UnknownRevisionError
from storage.migrations.lock import sqlite_lock_path
from storage.migrations.options import CONTEXT_OPTIONS
from storage.migrations.runner import (
    BASELINE_REVISION,
    SCRIPT_LOCATION,
    alembic_config,
    current_revisions,
    head_revision,
    upgrade_to_head,
)
from storage.models import EventType, JobStatus, JobType
from storage.repository import JobRepository
from tests.fixtures.pre_migration import (
    JOBS,
    PRE_MIGRATION,
    create_pre_migration_schema,
    insert_rows,
    read_rows,
    sample_rows,
)

VERSION_TABLE = "alembic_version"


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on a fresh, empty database (SQLite and PostgreSQL); no tables yet."""
    engine = create_db_engine(db_url)
    try:
        yield engine
    finally:
        engine.dispose()


def model_diff(engine: Engine) -> list[Any]:
    """What autogenerate would put in a new revision: the models against the database."""
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts=CONTEXT_OPTIONS)
        return list(compare_metadata(context, SQLModel.metadata))


def version_rows(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars())


def schema_of(engine: Engine) -> dict[str, Any]:
    """Tables, columns (types, nullability, defaults), keys, indexes and unique constraints
    as the database reports them; the version table left out."""
    inspector = sa.inspect(engine)

    def rows(items: list[Any]) -> list[str]:
        return sorted(repr(sorted(item.items())) for item in items)

    schema: dict[str, Any] = {}
    for table in sorted(inspector.get_table_names()):
        if table == VERSION_TABLE:
            continue
        columns = [{**c, "type": str(c["type"])} for c in inspector.get_columns(table)]
        schema[table] = {
            "columns": [repr(sorted(c.items())) for c in columns],
            "primary_key": inspector.get_pk_constraint(table),
            "foreign_keys": rows(list(inspector.get_foreign_keys(table))),
            "indexes": rows(list(inspector.get_indexes(table))),
            "unique": rows(list(inspector.get_unique_constraints(table))),
        }
    if engine.dialect.name == "sqlite":  # the CREATE statements themselves, word for word
        with engine.connect() as conn:
            schema["sqlite_master"] = conn.execute(
                sa.text(
                    "SELECT type, name, tbl_name, sql FROM sqlite_master "
                    f"WHERE tbl_name != '{VERSION_TABLE}' ORDER BY name"
                )
            ).all()
    return schema


def upgrade_to(engine: Engine, revision: str) -> None:
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), revision)


LATER = "later"  # the test's own revision, on top of the package's newest


def scripts_with(tmp_path: Path, later_revision: str) -> Path:
    """A copy of the migration scripts with one more revision, `LATER`, on top of head."""
    location = tmp_path / "migrations"
    shutil.copytree(SCRIPT_LOCATION, location, ignore=shutil.ignore_patterns("__pycache__"))
    header = (
        "import sqlalchemy as sa\nfrom alembic import op\n\n"
        f"revision = '{LATER}'\ndown_revision = '{head_revision()}'\n"
        "branch_labels = None\ndepends_on = None\n\n"
        "def downgrade() -> None:\n    pass\n\n"
    )
    (location / "versions" / "9999_test.py").write_text(header + later_revision)
    return location


# -- a new database ------------------------------------------------------------------------


def test_a_fresh_upgrade_creates_exactly_the_models(engine: Engine) -> None:
    # Guards every later model change: a model changed without a revision fails here.
    result = upgrade_to_head(engine)
    assert result.before == () and not result.stamped
    assert result.after == head_revision()
    assert model_diff(engine) == []
    assert version_rows(engine) == [head_revision()]
    assert set(sa.inspect(engine).get_table_names()) == {
        "jobs",
        "job_events",
        "artifacts",
        "api_keys",
        "uploads",
        "webhook_deliveries",
        VERSION_TABLE,
    }


def test_the_models_differ_from_a_database_without_a_table(engine: Engine) -> None:
    # The check above can fail: a missing table is a difference.
    upgrade_to_head(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE artifacts"))
    diff = model_diff(engine)
    assert [(d[0], d[1].name) for d in diff if d[0] == "add_table"] == [("add_table", "artifacts")]
    assert {d[1].table.name for d in diff if d[0] == "add_index"} == {"artifacts"}


def test_upgrading_again_changes_nothing(engine: Engine) -> None:
    upgrade_to_head(engine)
    schema = schema_of(engine)
    result = upgrade_to_head(engine)
    assert result.before == (head_revision(),) and not result.stamped
    assert schema_of(engine) == schema
    assert version_rows(engine) == [head_revision()]


def test_a_database_at_head_is_only_read(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    # Replica starts on an up-to-date database take no lock (SQLite's would wait for writers).
    upgrade_to_head(engine)

    def no_lock(_engine: Engine) -> None:
        raise AssertionError("the migration lock was taken")

    monkeypatch.setattr("storage.migrations.runner.locked_connection", no_lock)
    result = upgrade_to_head(engine)
    assert result.before == (head_revision(),) and not result.stamped


def test_revision_0001_is_the_schema_of_create_all_before_migrations(engine: Engine) -> None:
    create_pre_migration_schema(engine)
    made_by_create_all = schema_of(engine)
    PRE_MIGRATION.drop_all(engine)
    assert sa.inspect(engine).get_table_names() == []
    upgrade_to(engine, BASELINE_REVISION)
    assert schema_of(engine) == made_by_create_all


# -- a database made before migrations ---------------------------------------------------


def test_a_pre_migration_database_is_stamped_and_keeps_every_row(engine: Engine) -> None:
    create_pre_migration_schema(engine)
    rows = sample_rows()
    insert_rows(engine, rows)
    before = read_rows(engine)
    assert [len(before[t]) for t in ("jobs", "job_events", "artifacts")] == [6, 13, 3]

    init_db(engine)  # what every process runs on start

    assert version_rows(engine) == [head_revision()]
    assert read_rows(engine) == before
    assert model_diff(engine) == []
    # ...and the service reads them as it reads its own.
    repo = JobRepository(engine)
    job = repo.get_job(uuid.UUID(int=4))
    assert job is not None
    assert job.status is JobStatus.completed and job.job_type is JobType.transcription
    assert job.video_title == "Ünïcödé title — with 'quotes'"
    assert job.segments == [{"start": 0.0, "end": 1.5, "text": "hello world"}]
    assert job.completed_at == rows["jobs"][3]["completed_at"]
    assert [e.seq for e in repo.list_events(job.id)] == [1, 2, 3]
    assert repo.list_events(job.id)[0].type is EventType.created
    artifacts = repo.list_artifacts(job.id)
    assert [a.filename for a in artifacts] == ["audio.wav", "transcript.json", "transcript.srt"]
    assert artifacts[0].size_bytes == 5_000_000_000
    assert artifacts[0].meta == {"stage": "audio", "sample_rate": 16000}
    pending = repo.get_job_by_key("client-key-1")
    assert pending is not None and pending.id == uuid.UUID(int=1)


def test_a_later_revision_keeps_every_row(engine: Engine, tmp_path: Path) -> None:
    # A revision that recreates `jobs` (SQLite cannot alter a column in place): the old
    # table is dropped, which with foreign keys on would cascade to every event and artifact.
    location = scripts_with(
        tmp_path,
        "def upgrade() -> None:\n"
        "    with op.batch_alter_table('jobs') as batch:\n"
        "        batch.alter_column('current_stage', existing_type=sa.String(64),\n"
        "                           type_=sa.String(128), existing_nullable=True)\n",
    )
    create_pre_migration_schema(engine)
    insert_rows(engine, sample_rows())
    before = read_rows(engine)

    result = upgrade_to_head(engine, location)

    assert result.stamped and result.after == LATER
    assert version_rows(engine) == [LATER]
    assert read_rows(engine) == before
    columns = {c["name"]: c for c in sa.inspect(engine).get_columns("jobs")}
    assert getattr(columns["current_stage"]["type"], "length", None) == 128
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:  # switched back on for the service's connections
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


LOCK_PROBE = """
def upgrade() -> None:
    from filelock import FileLock, Timeout

    from storage.migrations.lock import LOCK_KEY, sqlite_lock_path

    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        probe = FileLock(sqlite_lock_path(bind.engine.url), timeout=0)
        try:
            probe.acquire()  # another descriptor: flock refuses it while the runner holds one
        except Timeout:
            held = True
        else:
            probe.release()
            held = False
    else:
        held = bind.execute(
            sa.text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND pid = pg_backend_pid() AND ((classid::bigint << 32) | objid::bigint) = :key"
            ),
            {"key": LOCK_KEY},
        ).scalar() == 1
    op.create_table("lock_probe", sa.Column("held", sa.Boolean(), nullable=False))
    op.execute(sa.text("INSERT INTO lock_probe (held) VALUES (:held)").bindparams(held=held))
"""


def test_revisions_run_under_the_migration_lock(engine: Engine, tmp_path: Path) -> None:
    upgrade_to_head(engine, scripts_with(tmp_path, LOCK_PROBE))
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT held FROM lock_probe")).scalars().all() == [True]


# -- refusals and failures ---------------------------------------------------------------


def test_a_database_newer_than_the_code_is_refused_untouched(engine: Engine) -> None:
    upgrade_to_head(engine)
    insert_rows(engine, sample_rows())
    with engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = '0099'"))
    schema, rows = schema_of(engine), read_rows(engine)

    with pytest.raises(UnknownRevisionError) as raised:
        init_db(engine)

    message = str(raised.value)
    assert "'0099'" in message and "newer vpa" in message and head_revision() in message
    assert version_rows(engine) == ["0099"]
    assert schema_of(engine) == schema and read_rows(engine) == rows


def test_some_but_not_all_old_tables_are_refused(engine: Engine) -> None:
    JOBS.create(engine)
    with pytest.raises(IncompleteSchemaError) as raised:
        init_db(engine)
    assert raised.value.present == ("jobs",)
    assert raised.value.missing == ("job_events", "artifacts")
    assert sa.inspect(engine).get_table_names() == ["jobs"]


def test_a_failing_revision_leaves_the_database_as_it_was(engine: Engine, tmp_path: Path) -> None:
    location = scripts_with(
        tmp_path,
        "def upgrade() -> None:\n"
        "    op.create_table('half_done', sa.Column('id', sa.Integer(), primary_key=True))\n"
        "    op.add_column('jobs', sa.Column('half_done', sa.Text(), nullable=True))\n"
        "    op.execute('SELECT * FROM no_such_table')\n",
    )
    upgrade_to_head(engine)
    insert_rows(engine, sample_rows())
    schema, rows = schema_of(engine), read_rows(engine)

    with pytest.raises(sa.exc.DBAPIError, match="no_such_table"):
        upgrade_to_head(engine, location)

    assert version_rows(engine) == [head_revision()]
    assert schema_of(engine) == schema and read_rows(engine) == rows
    with engine.connect() as conn:
        assert current_revisions(conn) == (head_revision(),)


def test_main_refuses_to_start_on_a_database_newer_than_the_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'vpa.db'}"
    engine = create_db_engine(url)
    try:
        upgrade_to_head(engine)
        with engine.begin() as conn:
            conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = '0099'"))
    finally:
        engine.dispose()
    monkeypatch.chdir(tmp_path)  # no .env of the checkout
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    handlers = {signum: signal.getsignal(signum) for signum in main.STOP_SIGNALS}
    try:
        # Ray must not start: the unit tests' ray.init raises, which would fail this test.
        code = main.main()
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)

    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("vpa cannot start: the database schema is at revision '0099'")
    assert "Traceback" not in err


# -- the lock file -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:////data/vpa.db", Path("/data/vpa.db.migrate.lock")),
        ("sqlite:///file:/data/vpa.db?mode=rwc&uri=true", Path("/data/vpa.db.migrate.lock")),
        ("sqlite://", None),
        ("sqlite:///:memory:", None),
        ("sqlite:///file:shared?mode=memory&cache=shared&uri=true", None),
    ],
)
def test_sqlite_lock_file_lies_next_to_the_database(url: str, expected: Path | None) -> None:
    assert sqlite_lock_path(make_url(url)) == expected
