"""A fresh database for a run: a SQLite file in a new temporary folder, or a new PostgreSQL
database with PostGIS (created through the admin URL, dropped by ``drop()``).

    db = Database("postgis", admin_url=PG_ADMIN_URL, prefix="goodmob_bench_")
    ServerProcess(db.url).start() ...
    db.drop()
"""

from __future__ import annotations

import secrets
import shutil
import tempfile

from sqlalchemy import create_engine, text

PG_ADMIN_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"


class DatabaseUnavailable(RuntimeError):
    """PostgreSQL does not answer, or has no PostGIS."""


class Database:
    """``url`` of a new, empty database; ``name`` the PostgreSQL database's (None for SQLite)."""

    def __init__(
        self, backend: str = "sqlite", *, admin_url: str = PG_ADMIN_URL, prefix: str = "goodmob_"
    ):
        self.backend = backend
        self.admin_url = admin_url
        self.name: str | None = None
        self._tmp: str | None = None
        if backend == "sqlite":
            self._tmp = tempfile.mkdtemp(prefix=prefix.replace("_", "-"))
            self.url = f"sqlite:///{self._tmp}/goodmob.sqlite3"
            return
        try:
            admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:
            raise DatabaseUnavailable(
                f"PostgreSQL unreachable at {admin_url}: {type(exc).__name__}"
            ) from exc
        name = f"{prefix}{secrets.token_hex(4)}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        self.name = name
        self.url = admin_url.rsplit("/", 1)[0] + f"/{name}"
        engine = create_engine(self.url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
        except Exception as exc:
            self.drop()
            raise DatabaseUnavailable(
                "PostGIS extension not installed (apt-get install postgresql-15-postgis-3)"
            ) from exc
        finally:
            engine.dispose()

    def drop(self) -> None:
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        if self.name:
            admin = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
            admin.dispose()
            self.name = None
