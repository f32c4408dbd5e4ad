"""Database engine and sessions: SQLite/SpatiaLite (embedded default) or PostgreSQL/PostGIS,
and ``db_session()``, the session of the current request or socket event."""

from __future__ import annotations

# Import shapely before SQLite loads SpatiaLite: SQLite dlopens extensions with RTLD_GLOBAL,
# so SpatiaLite's system GEOS would otherwise bind shapely's GEOS calls to the wrong library
# version (seen as "WKB output dimension must be 2 or 3" when writing geometries).
import shapely  # noqa: F401, I001
from flask import current_app, g
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from config import Settings

__all__ = ["make_engine", "make_session_factory", "db_session", "SpatialiteMissing"]


class SpatialiteMissing(RuntimeError):
    """The SpatiaLite extension could not be loaded into SQLite."""


def _sqlite_engine(settings: Settings) -> Engine:
    try:
        import pysqlite3.dbapi2 as sqlite_module  # stdlib sqlite3 here cannot load extensions
    except ImportError:  # pragma: no cover - depends on the platform
        import sqlite3 as sqlite_module

    engine = create_engine(
        settings.database_url,
        module=sqlite_module,
        connect_args={"timeout": 15, "check_same_thread": False},
        hide_parameters=True,  # no coordinates or tokens in error messages and logs
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        try:
            dbapi_conn.enable_load_extension(True)
            dbapi_conn.load_extension(settings.spatialite_library)
            dbapi_conn.enable_load_extension(False)
        except Exception as exc:
            raise SpatialiteMissing(
                f"SQLite could not load SpatiaLite ({settings.spatialite_library}): {exc}. "
                "Install it with: apt-get install libsqlite3-mod-spatialite"
            ) from exc
        dbapi_conn.execute("PRAGMA foreign_keys = ON")
        dbapi_conn.execute("PRAGMA busy_timeout = 15000")
        # Write-ahead log: readers never wait for the writer, and a commit appends to the
        # log instead of rewriting pages; NORMAL syncs at checkpoints, not at every commit
        # (a power cut may lose the last commits, never corrupt the file).
        dbapi_conn.execute("PRAGMA journal_mode = WAL")
        dbapi_conn.execute("PRAGMA synchronous = NORMAL")
        if dbapi_conn.execute("SELECT CheckSpatialMetaData()").fetchone()[0] < 1:
            dbapi_conn.execute("SELECT InitSpatialMetaData(1, 'WGS84')")

    return engine


def _postgres_engine(settings: Settings) -> Engine:
    try:
        from gevent import monkey  # optional: only a gevent server patches

        if monkey.is_module_patched("socket"):
            # Let a slow query yield to the other greenlets instead of stalling the process.
            from psycogreen.gevent import patch_psycopg

            patch_psycopg()
    except ImportError:  # pragma: no cover
        pass
    url = settings.database_url
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg2://" + url.removeprefix("postgresql://")
    return create_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_s,  # then 503 server_busy, not a long hang
        pool_pre_ping=True,
        hide_parameters=True,
    )


def make_engine(settings: Settings) -> Engine:
    """The engine for ``settings.database_url`` with the spatial extension ready."""
    if settings.is_sqlite:
        return _sqlite_engine(settings)
    return _postgres_engine(settings)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def db_session() -> Session:
    """The request's SQLAlchemy session, opened on first use and closed at teardown (the app
    factory closes it when the app context ends)."""
    if "db" not in g:
        g.db = current_app.extensions["goodmob.sessions"]()
    return g.db
