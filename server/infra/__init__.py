"""Infrastructure: the database (engine, sessions, models, migrations), errors, logs, metrics,
security headers and rate limits. Imports nothing from ``server.domain``, ``server.http`` or
``server.realtime``."""
