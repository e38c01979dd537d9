"""The migration lock: one process at a time looks at the schema and changes it.

Every process that opens the database (the app builder, each ingress replica, the job
coordinator) upgrades it on start, and several of them start at once. Each takes this lock
first; the first one migrates, the others wait, then find the schema at head and do nothing.

- PostgreSQL: `pg_advisory_xact_lock` with a fixed key, taken in the transaction that then
  runs the migrations. The whole upgrade is one transaction (PostgreSQL's DDL is
  transactional): it commits entirely or not at all, and the lock goes with it, also when
  the process dies and its connection closes.
- SQLite: an exclusive `filelock` on `<database>.migrate.lock` next to the database file
  (SQLite's own locks give up after the busy timeout, and a migration may take longer), then
  `BEGIN IMMEDIATE` on a connection without the driver's implicit transactions, so the
  upgrade is one transaction too. Foreign keys are off while it runs: a batch migration
  recreates a table, and dropping the old `jobs` with foreign keys on would cascade-delete
  every event and artifact. They are checked (`PRAGMA foreign_key_check`) before commit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from filelock import FileLock
from sqlalchemy import Connection, Engine
from sqlalchemy.engine import URL

from storage.migrations.errors import SchemaError

LOCK_KEY = 0x767061_494E4954  # "vpa" "INIT": the key the pre-Alembic start-up locked on too
"""Key of the PostgreSQL advisory lock; unchanged, so an older vpa starting at the same time
(create_all under the same lock) and this one take turns."""


@contextlib.contextmanager
def locked_connection(engine: Engine) -> Iterator[Connection]:
    """A connection inside a transaction, holding the migration lock; commits on a normal
    exit, rolls everything back on an exception."""
    dialect = engine.dialect.name
    if dialect == "postgresql":
        with engine.begin() as conn:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
            yield conn
    elif dialect == "sqlite":
        with _file_lock(engine.url), _sqlite_transaction(engine) as conn:
            yield conn
    else:
        raise SchemaError(f"vpa migrates SQLite and PostgreSQL databases, not {dialect}")


def sqlite_lock_path(url: URL) -> Path | None:
    """The lock file of a SQLite database: `<database>.migrate.lock`; None for an in-memory
    database, which no other process can open."""
    database = url.database or ""
    if database.startswith("file:"):  # a URI filename: sqlite:///file:path?mode=...&uri=true
        if url.query.get("mode") == "memory":
            return None
        database = database[len("file:") :]
    if database in ("", ":memory:"):
        return None
    path = Path(database).expanduser().resolve()
    return path.with_name(path.name + ".migrate.lock")


@contextlib.contextmanager
def _file_lock(url: URL) -> Iterator[None]:
    path = sqlite_lock_path(url)
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(path):  # blocks until the process holding it releases it or dies
        yield


@contextlib.contextmanager
def _sqlite_transaction(engine: Engine) -> Iterator[Connection]:
    # AUTOCOMMIT: the driver starts no transaction of its own (pysqlite would otherwise
    # commit DDL as it goes); BEGIN and COMMIT are ours. Restored when the connection goes
    # back to the pool.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("PRAGMA foreign_keys=OFF")  # a no-op inside a transaction
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                yield conn
                _check_foreign_keys(conn)
            except BaseException:
                conn.exec_driver_sql("ROLLBACK")
                raise
            conn.exec_driver_sql("COMMIT")
        finally:
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")


def _check_foreign_keys(conn: Connection) -> None:
    violations = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if violations:
        tables = sorted({str(row[0]) for row in violations})
        raise SchemaError(
            f"the migration left rows without their parent in {', '.join(tables)}; "
            "rolled back, the database is unchanged"
        )
