"""Tooling around a real Good Mob server, shared by the tests, the benchmarks, the screenshot
scripts and the demo (one copy of each, issue 18 item 5):

- ``support.ports``: ``free_port()``;
- ``support.server``: ``ServerProcess``, one ``python -m server`` process (settings through
  its environment, ``--workers``/Redis), started and waited for on ``/healthz``, stopped,
  its output kept; what its processes use (CPU, memory, sockets);
- ``support.db``: ``Database``, a fresh SQLite file or a new PostgreSQL/PostGIS database;
- ``support.organizer``: ``Organizer``, an organizer on a running server through the HTTP API
  (sign up, log in, mobs, tasks, publish, start now);
- ``support.park``: the test park (Volkspark am Weinberg, Berlin) and square zones;
- ``support.demo``: the demo (``./scripts/run --demo``, ``python -m support.demo``).

It talks to the server as any client does: through its command line and its HTTP API, with
``config`` for the settings. It imports nothing else of ``server``.
"""
