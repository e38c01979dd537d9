"""Alembic migrations of vpa's database: the scripts (`env.py`, `versions/`) and the code that
runs them on start (`runner.upgrade_to_head`). See docs/migrations.md.

Nothing is imported here, so that `storage.migrations.errors` stays cheap to import (main.py
catches its errors before it imports anything heavy).
"""
