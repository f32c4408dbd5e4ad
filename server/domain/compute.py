"""CPU-heavy geometry off the event loop: a small pool of worker processes.

One task-generation request over a hostile zone can take seconds of CPU (issue 15, finding
3). Run in the request's greenlet it would stall every socket and request of the process, so
:func:`run` hands the call to a ``concurrent.futures.ProcessPoolExecutor`` (``forkserver``
start: the workers are forked from a clean server process that imported ``geo`` once, never
from this gevent process with its sockets and database connections) and waits for the
answer cooperatively: under gevent the wait yields to the hub, and the executor's helper
thread is a greenlet waiting on pipes, so other requests are served meanwhile. Without gevent
(the Flask test client) the same code simply blocks the calling thread.

Measured on the 2-core machine (docs/SECURITY.md, issue 15 finding 3): a gevent thread pool
kept ``/healthz`` answering too (shapely releases the GIL in GEOS calls), but a process can be
killed when it runs too long and a GEOS crash cannot take the server down, so processes it is.

Bounds: ``COMPUTE_WORKERS`` processes; at most ``COMPUTE_MAX_PENDING`` calls running or
waiting per server process (more answer 503 ``server_busy`` at once, so a flood of heavy
requests cannot hold every database connection while queueing); a call running longer than
``COMPUTE_TIMEOUT_S`` has its worker killed and answers 503 ``server_busy``.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import multiprocessing
import threading
from concurrent.futures.process import BrokenProcessPool

from config import Settings
from server.infra.errors import ApiError

__all__ = ["run", "warm_up", "shutdown", "pending"]

log = logging.getLogger("goodmob.compute")

_lock = threading.Lock()
_pool: concurrent.futures.ProcessPoolExecutor | None = None
_pending = 0


def _noop() -> None:
    return None


def _executor(settings: Settings) -> concurrent.futures.ProcessPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["geo"])
            _pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=settings.compute_workers, mp_context=context
            )
        return _pool


def _discard(pool: concurrent.futures.ProcessPoolExecutor, *, kill: bool) -> None:
    """Forget ``pool`` (the next call starts a fresh one); with ``kill``, end its workers."""
    global _pool
    with _lock:
        if _pool is pool:
            _pool = None
    if kill:
        for process in list(getattr(pool, "_processes", {}).values()):
            process.kill()
    pool.shutdown(wait=False, cancel_futures=True)


def _busy(message: str) -> ApiError:
    return ApiError(503, "server_busy", message)


def pending() -> int:
    """Calls running or waiting in this process (for tests and metrics)."""
    return _pending


def run(settings: Settings, fn, /, *args, **kwargs):
    """``fn(*args, **kwargs)`` in a worker process; its result, or its exception re-raised.

    ``fn`` and its arguments must be picklable (a module-level function, shapely
    geometries, plain values). Raises :class:`ApiError` 503 ``server_busy`` when
    ``COMPUTE_MAX_PENDING`` calls are already under way, when the call runs past
    ``COMPUTE_TIMEOUT_S`` (its worker is killed), or when a worker died.
    """
    global _pending
    with _lock:
        if _pending >= settings.compute_max_pending:
            raise _busy("The server is busy with other heavy requests; try again in a moment.")
        _pending += 1
    try:
        pool = _executor(settings)
        try:
            future = pool.submit(fn, *args, **kwargs)
        except BrokenProcessPool:
            _discard(pool, kill=True)
            pool = _executor(settings)
            future = pool.submit(fn, *args, **kwargs)
        try:
            return future.result(timeout=settings.compute_timeout_s)
        except concurrent.futures.TimeoutError:
            log.warning(
                "compute: %s ran past COMPUTE_TIMEOUT_S=%gs; its worker was killed",
                getattr(fn, "__name__", fn),
                settings.compute_timeout_s,
            )
            _discard(pool, kill=True)
            raise _busy("The computation took too long; try a simpler request.") from None
        except BrokenProcessPool:
            log.warning("compute: a worker process died; the pool starts afresh")
            _discard(pool, kill=True)
            raise _busy("The server is busy; try again in a moment.") from None
    finally:
        with _lock:
            _pending -= 1


def warm_up(settings: Settings) -> None:
    """Start the pool's server and a worker now, so the first heavy request does not pay
    for it (``python -m server`` calls this in a background greenlet)."""
    with contextlib.suppress(ApiError):
        run(settings, _noop)


def shutdown() -> None:
    """Stop the pool (its workers finish what they run); a later call starts a new one."""
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)
