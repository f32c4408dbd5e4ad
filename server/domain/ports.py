"""What the domain needs from the process it runs in, set once at wiring time (``server.app``).

The domain never imports Flask or Socket.IO. It tells the world about a change through the
``Notifier`` (numbered mob events after their commit, re-matched tasks, followers told about a
published mob), and it runs background work, sleeps and finds the current app's state
(settings, session factory, per-app buffers, logger) through the ``Host``.

``server.app.create_app`` installs ``server.realtime.broadcast``'s ``SocketNotifier`` and
``SocketHost``; until then (a script, a unit test) nothing is sent,
background work runs in a thread and there is no current app.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["Notifier", "Host", "install", "notifier", "host"]


class Notifier:
    """How the domain tells clients about a change. The base class sends nothing."""

    def mob_event(self, mob_id: str, name: str, payload: dict) -> None:
        """A numbered event of a mob (``timeline``, ``phase``, ``announcement``), to every
        audience; called after the commit that recorded it."""

    def tasks_assigned(self, session, moved: list[tuple[int, Any]]) -> None:
        """Each re-matched participant's new task (``[(participant id, Task or None)]``), to
        that participant alone; called after the commit."""

    def stats_changed(self, mob, totals: dict | None = None) -> None:
        """The mob's counters moved (throttled pushes; ``totals`` when the caller has them)."""

    def tasks_changed(self, mob) -> None:
        """The mob's tasks or their deed counts changed (throttled pushes)."""

    def deed_reviewed(self, mob, deed) -> None:
        """The organizer's verdict on a deed, to the deed's owner alone."""

    def mob_published(self, matches: dict[int, list[str]], payload: dict) -> None:
        """Followers with an open app are told about a published mob (with their reasons)."""


class Host:
    """Background work, sleeping and the current app. The base class uses threads and has no
    app."""

    def spawn(self, fn: Callable, *args) -> Any:
        thread = threading.Thread(target=fn, args=args, daemon=True)
        thread.start()
        return thread

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def app(self):
        """The app handling the current request, event or background task (its ``config``,
        ``extensions`` and ``logger``), or None outside one."""
        return None


_installed: dict[str, Any] = {"notifier": Notifier(), "host": Host()}


def install(notifier: Notifier | None = None, host: Host | None = None) -> None:
    """Set the notifier and the host (``server.app`` does, for every app it builds)."""
    if notifier is not None:
        _installed["notifier"] = notifier
    if host is not None:
        _installed["host"] = host


def notifier() -> Notifier:
    return _installed["notifier"]


def host() -> Host:
    return _installed["host"]
