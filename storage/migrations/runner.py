"""Upgrade a database to the newest revision on start: programmatic Alembic, no alembic.ini,
no dependence on the current directory.

`upgrade_to_head(engine)` is what every process opening the database calls (through
`storage.db.init_db`). A database already at the newest revision is only read: no lock, no
write. Otherwise, under the migration lock (`storage.migrations.lock`), it:

1. refuses a database at a revision this code does not know (a newer vpa upgraded it);
2. stamps a database made before vpa had migrations (today's tables, no revision recorded)
   at the baseline revision, the schema those databases already have;
3. runs the missing revisions, all in one transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

from storage.migrations.errors import IncompleteSchemaError, UnknownRevisionError
from storage.migrations.lock import locked_connection

SCRIPT_LOCATION = Path(__file__).resolve().parent
"""This package: env.py, script.py.mako and versions/."""

BASELINE_REVISION = "0001"
"""The schema vpa created with `create_all` before it had migrations."""

BASELINE_TABLES = ("jobs", "job_events", "artifacts")
"""The tables of the baseline revision; all present and no revision recorded means a database
made before migrations existed."""

log = logging.getLogger("vpa.db")


@dataclass(frozen=True)
class UpgradeResult:
    """What `upgrade_to_head` found and did."""

    before: tuple[str, ...]
    """Revisions recorded before the upgrade; empty for a new or a pre-migration database."""
    after: str
    """The revision the database is at now: the head."""
    stamped: bool
    """True when a pre-migration database was stamped at the baseline first."""


def alembic_config(connection: Connection, script_location: Path = SCRIPT_LOCATION) -> Config:
    """An Alembic `Config` built in code: the scripts of `script_location`, run on
    `connection` (env.py uses it as is and leaves its transaction to the caller)."""
    config = Config()
    # ConfigParser interpolates '%': a path containing one must escape it.
    config.set_main_option("script_location", str(script_location).replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


def head_revision(script_location: Path = SCRIPT_LOCATION) -> str:
    """The newest revision of the scripts (there is one head: no branches)."""
    return _head(ScriptDirectory(str(script_location)))


def _head(script: ScriptDirectory) -> str:
    head = script.get_current_head()  # raises when branches left several heads
    if head is None:
        raise RuntimeError(f"no migration scripts in {script.dir}")
    return head


def current_revisions(connection: Connection) -> tuple[str, ...]:
    """The revisions recorded in the database's alembic_version table (empty if none)."""
    return tuple(MigrationContext.configure(connection).get_current_heads())


def upgrade_to_head(engine: Engine, script_location: Path = SCRIPT_LOCATION) -> UpgradeResult:
    """Bring the database of `engine` to the newest revision, safely when several processes
    call this at once: the first migrates, the others wait for it and find nothing to do.
    A database already at the newest revision is only read.

    Raises `UnknownRevisionError` for a database at a revision newer than this code, and
    `IncompleteSchemaError` for one holding only some of vpa's tables and no revision;
    either leaves the database untouched.
    """
    head = head_revision(script_location)
    with engine.connect() as conn:
        seen = current_revisions(conn)
    if seen == (head,):
        # The usual start: nothing to do, and no lock taken (on SQLite that would wait for
        # the coordinator's writes). Revisions only move forward, so head stays head.
        return UpgradeResult(before=seen, after=head, stamped=False)
    with locked_connection(engine) as conn:
        config = alembic_config(conn, script_location)
        script = ScriptDirectory.from_config(config)
        before = current_revisions(conn)  # again: another process may have migrated meanwhile
        known = {rev.revision for rev in script.walk_revisions()}
        unknown = tuple(rev for rev in before if rev not in known)
        if unknown:
            raise UnknownRevisionError(unknown, head)
        stamped = not before and _is_pre_migration(conn)
        if stamped:
            command.stamp(config, BASELINE_REVISION)
            log.info("database made before migrations: stamped at %s", BASELINE_REVISION)
        command.upgrade(config, "head")
    if before != (head,):
        log.info("database schema upgraded from %s to %s", ", ".join(before) or "none", head)
    return UpgradeResult(before=before, after=head, stamped=stamped)


def _is_pre_migration(conn: Connection) -> bool:
    """Whether the baseline's tables are all there (made by the old `create_all`); False when
    none is (a new database). Some but not all: refuse to guess."""
    inspector = sa.inspect(conn)
    present = tuple(t for t in BASELINE_TABLES if inspector.has_table(t))
    if not present:
        return False
    missing = tuple(t for t in BASELINE_TABLES if t not in present)
    if missing:
        raise IncompleteSchemaError(present, missing)
    return True
