"""Alembic's environment script: runs the revisions on a connection.

The service calls Alembic from `storage.migrations.runner` with a connection that already
holds the migration lock and a transaction (`config.attributes["connection"]`); this script
uses it as it is. From the command line (`alembic -c alembic.ini ...`, for developers) it
opens its own, from DATABASE_URL (via vpa's settings) unless the ini's `sqlalchemy.url`
says otherwise, and takes the same lock.
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection
from sqlmodel import SQLModel

import storage.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from storage.migrations.options import CONTEXT_OPTIONS


def run_on(connection: Connection) -> None:
    """Run the revisions Alembic was asked for on `connection`."""
    context.configure(connection=connection, target_metadata=SQLModel.metadata, **CONTEXT_OPTIONS)
    with context.begin_transaction():
        context.run_migrations()


def run_offline(url: str) -> None:
    """`alembic upgrade --sql`: print the SQL instead of running it."""
    context.configure(
        url=url,
        target_metadata=SQLModel.metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **CONTEXT_OPTIONS,
    )
    with context.begin_transaction():
        context.run_migrations()


def command_line_url() -> str:
    """The database a developer's `alembic` command works on."""
    url = context.config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from config.settings import Settings

    return Settings().resolved_database_url()


def main() -> None:
    """Entry point: Alembic executes this module for every command."""
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run_on(connection)
        return
    if context.config.config_file_name is not None:  # the alembic command: its log output
        fileConfig(context.config.config_file_name, disable_existing_loggers=False)
    from storage.db import create_db_engine, normalise_url
    from storage.migrations.lock import locked_connection

    url = command_line_url()
    if context.is_offline_mode():
        run_offline(normalise_url(url))
        return
    engine = create_db_engine(url)
    try:
        with locked_connection(engine) as conn:
            run_on(conn)
    finally:
        engine.dispose()


main()
