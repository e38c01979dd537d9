"""Why vpa refuses to run on a database: errors raised before any migration changes it.

This module imports nothing, so the start-up script can catch these errors cheaply.
"""

from __future__ import annotations


class SchemaError(RuntimeError):
    """The database's schema is not one this version of vpa can upgrade or run on."""


class UnknownRevisionError(SchemaError):
    """The database is at a revision this code does not know: a newer vpa upgraded it."""

    def __init__(self, revisions: tuple[str, ...], head: str) -> None:
        self.revisions = revisions
        self.head = head
        shown = ", ".join(repr(r) for r in revisions)
        super().__init__(
            f"the database schema is at revision {shown}, which this version of vpa does not "
            f"know (its newest is {head!r}): a newer vpa has upgraded it. Run that newer "
            "version, or restore a backup made for this one; vpa will not run on it."
        )


class IncompleteSchemaError(SchemaError):
    """Some of vpa's tables exist but not all, and no revision is recorded."""

    def __init__(self, present: tuple[str, ...], missing: tuple[str, ...]) -> None:
        self.present = present
        self.missing = missing
        super().__init__(
            f"the database has vpa's tables {', '.join(present)} but not "
            f"{', '.join(missing)}, and no Alembic revision: it was not made by vpa, or its "
            "creation was interrupted. vpa will not guess its schema; repair or remove it."
        )
