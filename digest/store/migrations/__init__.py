"""The schema's Alembic migrations: `env.py`, and one file per revision in `versions/`.

`digest.store.schema.upgrade` (what `digest init` runs) applies them; no alembic.ini is needed.
To write the next revision, change the tables in `digest/store/schema.py`, then from the repo root:

    DIGEST_DATABASE_URL=sqlite:///var/digest.sqlite3 alembic revision --autogenerate \
        --rev-id 0003 -m "what changed"

(that database must be at the head revision: `digest init` first; `[tool.alembic]` in
pyproject.toml finds this folder). Review the file (autogenerate misses renames, and SQLite
needs its batch operations), then run the tests: `tests/test_migrations.py` checks on SQLite
and PostgreSQL that the migrations make exactly the tables in `digest/store/schema.py`.
"""
