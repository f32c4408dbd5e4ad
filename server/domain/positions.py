"""Write-behind buffer of participants' latest fixes, one per server process.

A walking phone reports every few seconds; most of its fixes change nothing but the raw
position (same zone state, same task). Such a fix is acknowledged at once and kept here,
and every FLUSH_INTERVAL_S the buffer writes all the fixes it holds in ONE transaction
(an executemany on SQLite, one ``UPDATE … FROM (VALUES …)`` per chunk on PostgreSQL).
Anything that changes counters or matching (zone entry or exit, a task claim) is still
written by the request itself, immediately.

Rules:

- Only the newest fix of a participant is kept (the database keeps only the latest one too).
- A write never replaces a newer fix: each row is updated only ``WHERE fix_at IS NULL OR
  fix_at < :fix_at``, so an immediate write made meanwhile (or by another process) wins.
- A failed flush puts its fixes back (unless a newer one arrived) for the next flush:
  nothing acknowledged is dropped silently. The process flushes on a graceful shutdown
  (``flush_all``); a killed process loses at most one interval of walking fixes, which the
  phones send again seconds later.
- Fixes of a mob whose positions were purged are never written (``purge_positions`` drops
  them from the buffer, and the write checks ``mobs.positions_purged_at``).
- A fix is tied to the participant row it was made for (same mob, row created before the
  fix), so a recycled id (tests that restart identities) never picks up a stranger's fix.

Readers in this process see the buffered fix through ``latest`` / ``overlay``; other
processes see the database, at most one interval behind.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Float, Integer, column, exists, or_, update, values
from sqlalchemy.orm import Session

from server.domain import ports
from server.infra.models import Mob, Participant, UTCDateTime

__all__ = [
    "FLUSH_INTERVAL_S",
    "Fix",
    "PositionBuffer",
    "buffer_for",
    "keep",
    "latest",
    "overlay",
    "flush_all",
    "purge_positions",
    "sqlite_time",
    "write_fixes",
]

#: Seconds between two flushes of a process's buffer.
FLUSH_INTERVAL_S = 0.2
#: Rows per statement on PostgreSQL (each row is 6 bind parameters).
_CHUNK = 1000
_EXTENSION = "goodmob.positions"

log = logging.getLogger("goodmob.positions")


@dataclass(frozen=True, slots=True)
class Fix:
    """A counted fix of one participant: lon/lat degrees, accuracy in metres, server time."""

    participant_id: int
    mob_pk: int
    lat: float
    lon: float
    accuracy_m: float
    fix_at: datetime


_P = Participant.__table__
_M = Mob.__table__


def _update_from_values(fixes: list[Fix]):
    """One PostgreSQL statement for many rows: ``UPDATE participants … FROM (VALUES …)``."""
    v = values(
        column("pid", Integer),
        column("mob", Integer),
        column("lat", Float),
        column("lon", Float),
        column("acc", Float),
        column("at", UTCDateTime),
        name="fixes",
    ).data([(f.participant_id, f.mob_pk, f.lat, f.lon, f.accuracy_m, f.fix_at) for f in fixes])
    return (
        update(_P)
        .where(
            _P.c.id == v.c.pid,
            _P.c.mob_pk == v.c.mob,
            _P.c.created_at <= v.c.at,
            or_(_P.c.fix_at.is_(None), _P.c.fix_at < v.c.at),
            ~exists().where(_M.c.pk == _P.c.mob_pk, _M.c.positions_purged_at.is_not(None)),
        )
        .values(lat=v.c.lat, lon=v.c.lon, accuracy_m=v.c.acc, fix_at=v.c.at)
    )


# SQLite: the same update as the driver's executemany, without SQLAlchemy's per-row
# parameter processing (most of a flush's time otherwise). Times as UTCDateTime stores them.
# Never over a purged mob's rows, never over a newer fix, never on a row made after the fix.
_SQLITE_UPDATE = (
    "UPDATE participants SET lat = ?, lon = ?, accuracy_m = ?, fix_at = ? "
    "WHERE id = ? AND mob_pk = ? AND created_at <= ? AND (fix_at IS NULL OR fix_at < ?) "
    "AND NOT EXISTS (SELECT 1 FROM mobs WHERE mobs.pk = participants.mob_pk "
    "AND mobs.positions_purged_at IS NOT NULL)"
)


def sqlite_time(at: datetime) -> str:
    """``2026-11-25 21:30:00.000000``: naive UTC text, as SQLAlchemy writes DATETIME."""
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def write_fixes(session: Session, fixes: list[Fix]) -> None:
    """Write ``fixes`` in the session's transaction (the caller commits)."""
    if not fixes:
        return
    if session.get_bind().dialect.name == "postgresql":
        for start in range(0, len(fixes), _CHUNK):
            session.execute(_update_from_values(fixes[start : start + _CHUNK]))
        return
    params = []
    for f in fixes:
        at = sqlite_time(f.fix_at)
        params.append((f.lat, f.lon, f.accuracy_m, at, f.participant_id, f.mob_pk, at, at))
    session.connection().exec_driver_sql(_SQLITE_UPDATE, params)


class PositionBuffer:
    """The latest deferred fix per participant, written every ``interval_s`` in one go."""

    def __init__(self, sessions, interval_s: float = FLUSH_INTERVAL_S, logger=None):
        self._sessions = sessions
        self.interval_s = interval_s
        self._fixes: dict[int, Fix] = {}
        self._lock = threading.Lock()  # gevent patches it; a plain lock under threads
        self._flush_lock = threading.Lock()
        self._log = logger or log
        self._running = False
        self.kept = 0  # fixes put in the buffer
        self.written = 0  # fixes written (a fix replaced before its flush is not)
        self.flushes = 0  # transactions that wrote at least one fix
        self.failures = 0  # flushes that failed (their fixes were kept)
        self._failing = 0  # failures since the last flush that worked
        self.largest = 0  # most fixes written by one flush

    def __len__(self) -> int:
        return len(self._fixes)

    def put(self, fix: Fix) -> None:
        """Keep ``fix`` unless a newer one of the same participant is already kept."""
        with self._lock:
            self.kept += 1
            held = self._fixes.get(fix.participant_id)
            if held is None or held.fix_at <= fix.fix_at or held.mob_pk != fix.mob_pk:
                self._fixes[fix.participant_id] = fix

    def get(self, participant_id: int) -> Fix | None:
        return self._fixes.get(participant_id)

    def drop_mob(self, mob_pk: int) -> int:
        """Forget every kept fix of a mob; how many were dropped."""
        with self._lock:
            gone = [pid for pid, f in self._fixes.items() if f.mob_pk == mob_pk]
            for pid in gone:
                del self._fixes[pid]
        return len(gone)

    def flush(self) -> int:
        """Write every kept fix in one transaction; on failure keep them for the next flush.

        Returns how many fixes were written (0 when there was nothing to write)."""
        with self._flush_lock:  # one flush at a time (the loop and a shutdown may meet)
            with self._lock:
                batch, self._fixes = self._fixes, {}
            if not batch:
                return 0
            session = self._sessions()
            try:
                write_fixes(session, list(batch.values()))
                session.commit()
            except Exception:
                self._restore(batch)  # first: whatever happens next, nothing is dropped
                self.failures += 1
                self._failing += 1
                if self._failing == 1 or self._failing % 100 == 0:  # not 5 lines a second
                    self._log.warning(
                        "positions: writing %d fixes failed (%d times in a row); kept for "
                        "the next flush",
                        len(batch),
                        self._failing,
                        exc_info=True,
                    )
                with contextlib.suppress(Exception):
                    session.rollback()
                raise
            finally:
                with contextlib.suppress(Exception):
                    session.close()
            if self._failing:
                self._log.warning("positions: writing works again after %d failures", self._failing)
                self._failing = 0
            self.written += len(batch)
            self.flushes += 1
            self.largest = max(self.largest, len(batch))
            return len(batch)

    def _restore(self, batch: dict[int, Fix]) -> None:
        with self._lock:
            for pid, fix in batch.items():
                held = self._fixes.get(pid)
                if held is None or (held.mob_pk == fix.mob_pk and held.fix_at < fix.fix_at):
                    self._fixes[pid] = fix

    def stats_line(self) -> str:
        return (
            f"positions: {self.kept} fixes deferred, {self.written} written in "
            f"{self.flushes} flushes (largest {self.largest}), {self.failures} failed, "
            f"{len(self)} left"
        )

    def run(self, stop=lambda: False) -> None:
        """The flush loop (a background task): flush, sleep, until ``stop()``."""
        self._running = True
        while not stop():
            started = time.monotonic()
            with contextlib.suppress(Exception):  # logged by flush; kept for the next round
                self.flush()
            ports.host().sleep(max(0.01, self.interval_s - (time.monotonic() - started)))


def buffer_for(app) -> PositionBuffer:
    """The app's buffer; the first call starts its flush loop as a background task."""
    buf = app.extensions.get(_EXTENSION)
    if buf is None:
        with _CREATE_LOCK:
            buf = app.extensions.get(_EXTENSION)
            if buf is None:
                buf = PositionBuffer(app.extensions["goodmob.sessions"], logger=app.logger)
                app.extensions[_EXTENSION] = buf
                ports.host().spawn(buf.run)
    return buf


_CREATE_LOCK = threading.Lock()


def _current_buffer() -> PositionBuffer | None:
    app = ports.host().app()
    return app.extensions.get(_EXTENSION) if app is not None else None


def keep(fix: Fix) -> None:
    """Buffer a fix of the current app's process for the next flush."""
    buffer_for(ports.host().app()).put(fix)


def latest(
    participant_id: int, mob_pk: int, created_at: datetime | None, row: Fix | None
) -> Fix | None:
    """The newest known fix of a participant: the buffered one or ``row`` (from the database).

    A buffered fix counts only if it belongs to this participant row (same mob, made after
    the row was created)."""
    buf = _current_buffer()
    held = buf.get(participant_id) if buf is not None else None
    if (
        held is not None
        and held.mob_pk == mob_pk
        and (created_at is None or held.fix_at >= created_at)
        and (row is None or held.fix_at > row.fix_at)
    ):
        return held
    return row


def overlay(participant: Participant) -> Participant:
    """Put the participant's buffered fix (if newer) on the ORM object, for this request."""
    row = None
    if participant.lat is not None and participant.fix_at is not None:
        row = Fix(
            participant.id,
            participant.mob_pk,
            participant.lat,
            participant.lon,
            participant.accuracy_m,
            participant.fix_at,
        )
    newest = latest(participant.id, participant.mob_pk, participant.created_at, row)
    if newest is not None and newest is not row:
        participant.lat, participant.lon = newest.lat, newest.lon
        participant.accuracy_m, participant.fix_at = newest.accuracy_m, newest.fix_at
    return participant


def flush_all() -> str:
    """Flush the current app's buffer now (graceful shutdown); a line saying what was done."""
    buf = _current_buffer()
    if buf is None:
        return "positions: no buffer"
    buf.flush()
    line = buf.stats_line()
    ports.host().app().logger.info(line)
    return line


def purge_positions(session: Session, mob: Mob) -> None:
    """Forget every raw position of ``mob``: the buffered fixes and the stored ones."""
    buf = _current_buffer()
    if buf is not None:
        buf.drop_mob(mob.pk)
    session.execute(
        update(Participant)
        .where(Participant.mob_pk == mob.pk)
        .values(lat=None, lon=None, accuracy_m=None, fix_at=None)
    )
