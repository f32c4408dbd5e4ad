"""Alembic environment: runs migrations on the engine that server/infra/db.py builds."""

from alembic import context

from config import load_settings
from server.infra.db import make_engine
from server.infra.models import Base

target_metadata = Base.metadata


def _include_object(obj, name, type_, reflected, compare_to):
    # SpatiaLite's own bookkeeping tables and the spatial index tables are not ours.
    spatialite_own = (
        name.startswith(("idx_", "spatial_ref_sys", "geometry_columns", "virts_", "views_"))
        or name in ("SpatialIndex", "ElementaryGeometries", "KNN", "KNN2", "data_licenses")
        or name.startswith(("sql_statements_log", "spatialite_history", "vector_"))
    )
    return not (type_ == "table" and spatialite_own)


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(load_settings())
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_object=_include_object,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("Offline (SQL script) migrations are not supported; run against a database.")
run_migrations_online()
