"""Several processes upgrading one database at once, as replicas do when vpa starts: real
OS processes (spawned), released together by a barrier, on SQLite and on PostgreSQL."""

from __future__ import annotations

import multiprocessing
from multiprocessing.connection import wait
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

from storage.db import create_db_engine
from storage.migrations.options import CONTEXT_OPTIONS
from storage.migrations.runner import head_revision
from tests.fixtures.pre_migration import (
    create_pre_migration_schema,
    insert_rows,
    read_rows,
    sample_rows,
)
from tests.fixtures.upgrade_worker import upgrade_after_barrier

PROCESSES = 4


def upgrade_at_once(url: str, processes: int) -> list[tuple[Any, ...]]:
    """Start `processes` processes that upgrade `url` together; their results."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(processes)
    results = ctx.SimpleQueue()  # written through at put(): all there once the writers exit
    workers = [
        ctx.Process(target=upgrade_after_barrier, args=(url, barrier, results))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    running = list(workers)
    while running:
        ended = wait([worker.sentinel for worker in running])
        for worker in [w for w in running if w.sentinel in ended]:
            running.remove(worker)
            worker.join()
            if worker.exitcode != 0:
                barrier.abort()  # one died before the barrier: the others must not wait
    outcomes = []
    while not results.empty():
        outcomes.append(results.get())
    assert [w.exitcode for w in workers] == [0] * processes, outcomes
    return outcomes


@pytest.mark.parametrize("existing", ["new database", "made before migrations"])
def test_concurrent_upgrades_migrate_once(db_url: str, existing: str) -> None:
    engine = create_db_engine(db_url)
    try:
        rows = None
        if existing == "made before migrations":
            create_pre_migration_schema(engine)
            insert_rows(engine, sample_rows())
            rows = read_rows(engine)

        outcomes = upgrade_at_once(db_url, PROCESSES)

        head = head_revision()
        assert all(o[0] == "ok" for o in outcomes), outcomes
        befores = sorted(o[1] for o in outcomes)
        # One process found nothing recorded and migrated; the others waited for it.
        assert befores == [()] + [(head,)] * (PROCESSES - 1)
        stamped = [o[2] for o in outcomes]
        assert stamped.count(True) == (1 if rows is not None else 0)
        with engine.connect() as conn:
            versions = conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()
            assert [tuple(v) for v in versions] == [(head,)]
            context = MigrationContext.configure(conn, opts=CONTEXT_OPTIONS)
            assert compare_metadata(context, SQLModel.metadata) == []
        if rows is not None:
            assert read_rows(engine) == rows
    finally:
        engine.dispose()
