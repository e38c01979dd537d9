"""Engine construction for SQLite (embedded default) and PostgreSQL (production), and the
schema upgrade every process runs on start (`init_db`; the migrations are in
`storage.migrations`).

There is no module-level engine: every Ray worker process imports modules anew, so whoever
needs a database builds an engine from the settings it was handed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url

from storage.migrations.runner import upgrade_to_head

_SQLITE_PRAGMAS = (
    # WAL: readers (the ingress replicas) never block the single writer (the coordinator).
    "PRAGMA journal_mode=WAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=5000",
    "PRAGMA synchronous=NORMAL",
)


def normalise_url(url: str) -> str:
    """Point PostgreSQL URLs at the psycopg 3 driver; leave every other URL alone."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def is_sqlite(engine_or_url: Engine | str) -> bool:
    url = engine_or_url.url if isinstance(engine_or_url, Engine) else make_url(engine_or_url)
    return url.get_backend_name() == "sqlite"


def database_unreachable(exc: BaseException) -> bool:
    """Whether `exc` says the database cannot be reached now (down, restarting, a dropped
    connection, every pooled connection busy), rather than that a statement is wrong: what
    is worth trying again once the database is back."""
    if isinstance(exc, sa_exc.OperationalError | sa_exc.TimeoutError):
        return True
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    import psycopg  # a driver error that escaped SQLAlchemy's wrapping

    return isinstance(exc, psycopg.OperationalError)


def unreachable_reason(exc: BaseException) -> str:
    """The first line of the driver's message for `exc` (which server, what failed)."""
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines() or [type(orig).__name__]
    return lines[0][:200]


def create_db_engine(url: str, *, echo: bool = False) -> Engine:
    """An engine for `url` ("sqlite:///path.db", "postgresql://...", ...) with our settings.
    On PostgreSQL, `pool_pre_ping` tests a pooled connection before handing it out, so after
    the server restarts the dead connections are replaced instead of failing a query."""
    sa_url = make_url(normalise_url(url))
    if sa_url.get_backend_name() == "sqlite":
        return _sqlite_engine(sa_url, echo)
    return create_engine(
        sa_url,
        echo=echo,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=5,
        pool_recycle=1800,
    )


def _sqlite_engine(url: URL, echo: bool) -> Engine:
    database = url.database or ""
    if database not in ("", ":memory:") and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, echo=echo, connect_args={"check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _set_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            for pragma in _SQLITE_PRAGMAS:
                cursor.execute(pragma)
        finally:
            cursor.close()

    return engine


def init_db(engine: Engine) -> None:
    """Bring the database to the newest schema revision (Alembic; creates a new database, and
    stamps one made before migrations existed). Safe to call from several processes at once:
    one migrates, the others wait and find nothing to do. Raises
    `storage.migrations.errors.SchemaError` on a database vpa must not run on."""
    upgrade_to_head(engine)


def upgrade_database(url: str) -> None:
    """`init_db` on the database at `url`, with an engine of its own, closed afterwards."""
    engine = create_db_engine(url)
    try:
        init_db(engine)
    finally:
        engine.dispose()
