"""The rules: operations that take a database session and plain values (mobs, tasks,
participants, deeds, the timeline, follows, pledges, campaigns, summaries, the scheduler).

Never imports Flask, Socket.IO, Werkzeug, ``server.http`` or ``server.realtime``; it tells the
outside world through ``server.domain.ports`` (set at wiring time by ``server.app``)."""
