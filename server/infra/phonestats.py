"""A mob's counters for its phones, carried on the location acks they already get.

Pushing a ``stats`` event to every phone of a big mob is one WebSocket frame per phone: at
5,000 phones about 0.15 s of a process, and every location ack that arrives meanwhile waits
(docs/BENCHMARKS.md, "locations"). A walking phone reports its location every few seconds and
gets an ack each time; that ack carries ``stats`` when the counters changed since the last
ones this phone got. A phone that does not report (no location permission, standing still
for a while) gets them from a push to that socket alone, at most every
``STATS_PARTICIPANTS_INTERVAL_S`` and only when they changed.

Per process and per app (``state(app)``):

- the latest counters of each mob with phones on this process, with a version number: set
  whenever this process pushes counters to the spectators (``offer``, at most every
  ``STATS_MIN_INTERVAL_S``), and read from the database by the loop when older than
  ``STATS_PARTICIPANTS_INTERVAL_S``, so that changes made through another process reach
  this process's phones too;
- for each socket, the version it last got and when.

The loop (``realtime.broadcast._phone_counters_once`` every fifth of the interval, started by the
first phone that joins) reads the counters of stale mobs, pushes them to the sockets that
are due, and forgets the mobs that have no phone here any more; it stops when no phone is
left, or when the app's engine is disposed.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field

from sqlalchemy import event

__all__ = ["PhoneCounters", "state"]

_KEY = "goodmob.phone_counters"


@dataclass
class _Latest:
    version: int
    payload: dict
    at: float  # monotonic time when counted


@dataclass
class PhoneCounters:
    interval: float  # STATS_PARTICIPANTS_INTERVAL_S
    latest: dict[str, _Latest] = field(default_factory=dict)  # mob id → counters
    seen: dict[str, tuple[int, float]] = field(default_factory=dict)  # sid → (version, when)
    running: bool = False  # the loop
    stopped: bool = False  # the app's engine was disposed: the loop ends
    lock: threading.Lock = field(default_factory=threading.Lock)
    _versions: itertools.count = field(default_factory=lambda: itertools.count(1))

    def offer(self, mob_id: str, payload: dict, now: float | None = None) -> None:
        """The mob's counters as just counted (``payload`` is the ``stats`` event's body)."""
        now = time.monotonic() if now is None else now
        entry = self.latest.get(mob_id)
        if entry is not None and entry.payload == payload:
            entry.at = now  # counted again, unchanged: nothing new to send
            return
        self.latest[mob_id] = _Latest(next(self._versions), payload, now)

    def joined(self, sid: str, mob_id: str) -> None:
        """``sid`` got the counters in its join snapshot: nothing is due for it before the
        next change, and then not before the interval has passed."""
        entry = self.latest.get(mob_id)
        self.seen[sid] = (entry.version if entry else 0, time.monotonic())

    def for_ack(self, sid: str, mob_id: str) -> dict | None:
        """The counters to put on ``sid``'s ack, if they changed since it last got some."""
        entry = self.latest.get(mob_id)
        if entry is None:
            return None
        got = self.seen.get(sid)
        if got is not None and got[0] == entry.version:
            return None
        self.seen[sid] = (entry.version, time.monotonic())
        return entry.payload

    def fresh(self, mob_id: str, max_age: float) -> dict | None:
        """The mob's counters if counted less than ``max_age`` seconds ago."""
        entry = self.latest.get(mob_id)
        if entry is None or time.monotonic() - entry.at >= max_age:
            return None
        return entry.payload

    def forget(self, sid: str) -> None:
        self.seen.pop(sid, None)

    def stale(self, mob_id: str, now: float) -> bool:
        entry = self.latest.get(mob_id)
        return entry is None or now - entry.at >= self.interval

    def due(self, mob_id: str, sids, now: float) -> tuple[dict | None, list[str]]:
        """The counters and the sockets among ``sids`` to push them to: those that have not
        got this version and got nothing for at least the interval. Marks them as served."""
        entry = self.latest.get(mob_id)
        if entry is None:
            return None, []
        out = []
        for sid in sids:
            got = self.seen.get(sid)
            if got is None or (got[0] != entry.version and now - got[1] >= self.interval):
                self.seen[sid] = (entry.version, now)
                out.append(sid)
        return entry.payload, out

    def stop(self, *_) -> None:
        self.stopped = True

    def keep_only(self, mob_ids) -> None:
        """Forget the counters of mobs with no phone on this process."""
        for mob_id in [m for m in self.latest if m not in mob_ids]:
            del self.latest[mob_id]


def state(app) -> PhoneCounters:
    found = app.extensions.get(_KEY)
    if found is None:
        found = app.extensions[_KEY] = PhoneCounters(
            app.config["SETTINGS"].stats_participants_interval_s
        )
        engine = app.extensions.get("goodmob.engine")
        if engine is not None:
            event.listen(engine, "engine_disposed", found.stop)
    return found
