"""Shared fixtures: one ``app`` per database backend (SQLite/SpatiaLite and PostGIS).

Every test that uses ``app``, ``client`` or ``db`` runs once per backend. Locally a backend
whose service is unreachable is skipped with a one-line reason; with CI=true it fails.
"""

from __future__ import annotations

import os

import pytest
from sqlalchemy import text

from config import load_settings
from server import create_app
from support.db import Database, DatabaseUnavailable

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PG_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)
BACKENDS = ["sqlite", "postgis"]


def unavailable(reason: str):
    """Skip locally, fail in CI: a missing service is a failure there."""
    if IN_CI:
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


def _postgis_database():
    """Create a fresh database with PostGIS; return (url, drop callback)."""
    try:
        database = Database("postgis", admin_url=PG_ADMIN_URL, prefix="goodmob_test_")
    except DatabaseUnavailable as exc:
        unavailable(str(exc))
    return database.url, database.drop


def pytest_collection_modifyitems(config, items):
    """Tests marked ``postgis_only`` (several processes, a PostgreSQL outage) are about the
    production setup: their SQLite variant is deselected rather than skipped."""
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("database_url") if callspec else None
        if backend == "sqlite" and item.get_closest_marker("postgis_only"):
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request, tmp_path_factory):
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("sqlite") / "goodmob.sqlite3"
        yield f"sqlite:///{path}"
        return
    url, drop = _postgis_database()
    yield url
    drop()


@pytest.fixture(scope="session")
def settings(database_url):
    return load_settings(
        {},
        env="test",
        database_url=database_url,
        secret_key="test-secret-" + "x" * 32,
    )


@pytest.fixture(scope="session")
def app(settings):
    application = create_app(settings)
    yield application
    application.extensions["goodmob.engine"].dispose()


@pytest.fixture()
def db(app):
    """A session on the app's database; the tables are emptied before each test."""
    from server.infra.models import Base

    engine = app.extensions["goodmob.engine"]
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]  # children first
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(text(f"DELETE FROM {table}"))
    session = app.extensions["goodmob.sessions"]()
    yield session
    session.close()


@pytest.fixture()
def client(app, db):
    return app.test_client()
