"""What every namespace shares: acks that never leave a client waiting (``ack_errors``),
``time_sync`` answered straight from the socket's reader, refusals with a code, the
socket events in flight (a graceful stop waits for them) and who watches which mob."""

from __future__ import annotations

import time

from flask import current_app
from flask import session as socket_session
from flask_socketio import ConnectionRefusedError, Namespace

from server.domain import mobs
from server.infra import metrics
from server.infra.db import db_session
from server.infra.errors import ApiError, error_body, unavailable
from server.infra.models import Mob

__all__ = [
    "BaseNamespace",
    "ack_errors",
    "in_flight",
    "rollback",
    "settings",
    "refused",
    "refused_busy",
    "watched_mob",
    "owned_mob_from",
    "refresh_after_joining",
    "watch",
    "unwatch",
]


def settings():
    return current_app.config["SETTINGS"]


# Socket events being handled by this process now (a graceful stop waits for them).
_in_flight = [0]


def in_flight() -> int:
    return _in_flight[0]


def rollback() -> None:
    """End the event's transaction; a connection that died with the database is dropped."""
    try:
        db_session().rollback()
    except Exception:
        current_app.logger.warning("rollback failed; the connection is discarded")


def ack_errors(handler):
    event = handler.__name__.removeprefix("on_")

    def wrapper(self, data=None, *more):
        _in_flight[0] += 1
        metrics.event_received(event)
        started = time.perf_counter()
        try:
            return handler(self, data, *more)
        except ApiError as exc:
            rollback()
            return error_body(exc.code, exc.message, exc.where)
        except Exception as exc:  # never leave a phone waiting for an ack that will not come
            rollback()
            busy = unavailable(exc)
            if busy is not None:  # nothing was committed: the phone retries (same deed_id)
                current_app.logger.warning("%s in %s", busy.code, handler.__name__)
                return error_body(busy.code, busy.message)
            current_app.logger.exception("socket event %s failed", handler.__name__)
            return error_body("internal_error", "Something went wrong on our side.")
        finally:
            _in_flight[0] -= 1
            metrics.observe_ack(event, time.perf_counter() - started)

    wrapper.__name__ = handler.__name__
    return wrapper


class BaseNamespace(Namespace):
    """Every namespace answers ``time_sync`` straight from the socket's reader: the handler
    needs no app, request or session, and Flask-SocketIO's request context per event cost
    more than the rest of the round trip. Phones send one every few seconds while they wait
    for GO (pwa/js/clock.js CLOCK_CONFIG; bench/timesync measures the cost)."""

    def trigger_event(self, event, *args):
        if event == "time_sync" and args:
            return _time_sync(args[1] if len(args) > 1 else None)
        return super().trigger_event(event, *args)


def _time_sync(data) -> dict:
    """NTP-style timestamps: the client's t0 back, with server receive and send times."""
    t1 = time.time() * 1000
    t0 = data.get("t0") if isinstance(data, dict) else None
    return {"t0": t0, "t1": t1, "t2": time.time() * 1000}


def watched_mob(data) -> Mob:
    mob_id = data.get("mob") if isinstance(data, dict) else None
    if not isinstance(mob_id, str):
        raise ApiError(400, "field_missing", "Send {mob: <mob id>}.", {"field": "mob"})
    return mobs.get_mob(db_session(), mob_id)  # drafts are not watchable: 404


def owned_mob_from(data, organizer) -> Mob:
    mob_id = data.get("mob") if isinstance(data, dict) else None
    if not isinstance(mob_id, str):
        raise ApiError(400, "field_missing", "Send {mob: <mob id>}.", {"field": "mob"})
    return mobs.get_owned_mob(db_session(), mob_id, organizer)


def refused(code: str, message: str) -> ConnectionRefusedError:
    """A refused connection; the client's ``connect_error`` has ``err.data = {code, message}``."""
    return ConnectionRefusedError(message, {"code": code, "message": message})


def refused_busy(exc: Exception) -> Exception:
    """A connection refused because the database is out of reach or every pooled connection
    is busy (the client retries, as after any refused connection); any other error as it is."""
    busy = unavailable(exc)
    if busy is None:
        return exc
    rollback()
    current_app.logger.warning("%s on connect", busy.code)
    return refused(busy.code, busy.message)


def refresh_after_joining(mob: Mob) -> None:
    """Read the mob again once the socket is in its room (the room is joined only after the
    watcher is authorized, which reads the mob): an event committed after this read reaches
    the socket live, one committed before is in the snapshot (or its ``missed``)."""
    db_session().refresh(mob)


def watch(mob_id: str, audience: str) -> None:
    """Count this socket as watching ``mob_id`` (once; a second watch_mob moves it)."""
    before = socket_session.get("watching")
    if before == mob_id:
        return
    if before is not None:
        metrics.socket_disconnected(before, audience)
    socket_session["watching"] = mob_id
    metrics.socket_connected(mob_id, audience)


def unwatch(audience: str) -> None:
    watching = socket_session.pop("watching", None)
    if watching is not None:
        metrics.socket_disconnected(watching, audience)
