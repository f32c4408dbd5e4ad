"""``python -m server [serve|migrate] [--host H] [--port P] [--workers N] [--redis-url URL]``.

The admin commands (``create-organizer``, ``list-mobs``, ``purge``, ``export``,
``check-config``) are in ``server/cli.py``; ``python -m server <command> --help`` shows each.

``serve`` (the default) runs the app with gevent and the phase scheduler. With ``--workers N``
(or WORKERS) above 1, this process becomes a small supervisor: it applies the migrations
once, then starts N single-worker server processes that all listen on the same port
(SO_REUSEPORT: the kernel spreads connections over them) and share Socket.IO rooms through
Redis (REDIS_URL, required). Clients must then use the WebSocket transport (the PWA does),
since HTTP long-polling needs every request of a session to reach the same process.
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

from config import ConfigError, load_settings  # noqa: E402

# The server's modules are imported inside the functions: each command (serve, migrate, the
# supervisor, an admin command) loads only what it uses. There is no import circle to dodge
# (scripts/check_layers.py checks it).


def _listener(host: str, port: int, reuse_port: bool):
    from gevent import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    return sock


def serve(settings, *, reuse_port: bool = False) -> int:
    import gc
    import logging

    import gevent
    from gevent import pywsgi

    from server import create_app, socketio

    # Each greenlet gevent spawns (two per connected socket: Engine.IO's writer and its ping
    # timer) would keep its spawner, the spawner's tree locals and a copy of the spawning
    # stack (~20 frame objects), for debugging output only (gevent.util.GreenletTree):
    # about 3 KiB per phone (bench: 1,500 phones, 70.5 → 67.5 KiB per phone).
    gevent.config.track_greenlet_tree = False
    from server.domain import compute, scheduler
    from server.domain.readiness import mark_scheduler_started
    from server.infra import subscription
    from server.infra.limits import raise_open_file_limit
    from server.realtime import wire, wsfast

    app = create_app(settings)
    # The geometry worker process (server.domain.compute) starts now, before the port is open:
    # its first start imports geo in a fresh interpreter (a second or two), which must not
    # stall a serving process.
    compute.warm_up(settings)
    print(raise_open_file_limit(settings.max_connections), file=sys.stderr, flush=True)
    # Each socket's events are handled in its reader greenlet, one at a time, instead of a
    # new greenlet per event (a phone's events are answered in order anyway).
    socketio.server.async_handlers = False
    # Client frames unmasked and UTF-8-checked at C speed instead of byte by byte in Python,
    # and refused by their declared length (SOCKET_MAX_MESSAGE_BYTES) before they are read;
    # room events written straight to idle WebSockets (DIRECT_WS_WRITES, on by default):
    # the parts whose library versions create_app found to be those tested (wsfast.check).
    wsfast.install(socketio.server, app.extensions["goodmob.wsfast"])
    # With thousands of sockets a process tracks millions of objects, and CPython's default
    # full collections (every few seconds under load) stall every socket for a second or
    # more: freeze what start-up made and collect far less often.
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 50, 50)
    stopping = []
    if settings.scheduler:
        socketio.start_background_task(scheduler.run, app, lambda: bool(stopping))
        mark_scheduler_started(app)
    # Subscribed to the message queue before the listening socket exists: a phone this
    # process accepts gets every event published after its join (issue 15, finding 8).
    wait_s = settings.redis_subscribe_wait_s
    print(subscription.start(app, socketio.server, wait_s), file=sys.stderr, flush=True)
    server = pywsgi.WSGIServer(
        _listener(settings.host, settings.port, reuse_port),
        app,
        # request headers and bodies read whole under deadlines before the app sees them;
        # WebSockets capped per address (server/realtime/wire.py)
        handler_class=wire.handler_class(settings),
        log=None,  # the app writes one access line per request (server.infra.logs), with its id
        error_log=logging.getLogger("goodmob.wsgi"),
    )

    from gevent.event import Event

    done = Event()

    def stop(*_):
        if not stopping:
            stopping.append(True)
            gevent.spawn(drain)

    def drain():
        try:
            drain_and_close(app, server, settings.shutdown_timeout_s)
        finally:
            done.set()

    gevent.signal_handler(signal.SIGTERM, stop)
    gevent.signal_handler(signal.SIGINT, stop)
    server.start()
    _tell_supervisor_ready()
    done.wait()
    return 0


_READY_FD = "GOODMOB_READY_FD"  # a pipe from the supervisor: one byte once this worker listens


def _tell_supervisor_ready() -> None:
    fd = os.environ.pop(_READY_FD, None)
    if fd is None:
        return
    try:
        os.write(int(fd), b"r")
        os.close(int(fd))
    except (OSError, ValueError):
        pass  # the supervisor is gone or did not ask


def _wait_ready(read_fd: int, child, timeout_s: float) -> bool:
    """Wait up to ``timeout_s`` for the worker's byte on ``read_fd`` (or its exit)."""
    import select

    deadline = time.monotonic() + timeout_s
    try:
        while child.poll() is None:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            ready, _, _ = select.select([read_fd], [], [], min(left, 0.5))
            if ready:
                return os.read(read_fd, 1) == b"r"
        return False
    finally:
        os.close(read_fd)


def drain_and_close(app, server, timeout_s: float) -> None:
    """A graceful stop, bounded by ``timeout_s``: stop accepting, let in-flight acks finish,
    close every phone's transport (they reconnect, landing on another process or on this one
    restarted), write buffered data, then close what is left. The phase scheduler needs no
    hand-over: every other process runs it and reads the schedule from the database."""
    from server import socketio
    from server.realtime.common import in_flight

    deadline = time.monotonic() + timeout_s
    server.close()  # the listening socket: new connections go to the other processes
    phones = len(socketio.server.eio.sockets)
    while in_flight() and time.monotonic() < deadline - 1:
        socketio.sleep(0.02)
    unfinished = in_flight()
    # Drop each transport without a goodbye packet: clients take it as a lost connection
    # and reconnect on their own (a Socket.IO "disconnect" would tell them not to).
    for sock in list(socketio.server.eio.sockets.values()):
        sock.close(wait=False, abort=True)
    with app.app_context():
        flushed = _flush_buffers()
    socketio.sleep(0.1)
    print(
        f"stopped: {phones} phone(s) told to reconnect, {unfinished} ack(s) unfinished, {flushed}",
        file=sys.stderr,
        flush=True,
    )


def _flush_buffers() -> str:
    try:
        from server.domain import positions
    except ImportError:
        return "no buffers"
    flush = getattr(positions, "flush_all", None) or getattr(positions, "flush", None)
    if flush is None:
        return "no buffers"
    try:
        flush()
        return "buffers written"
    except Exception as exc:  # the database is gone: say so, nothing else can be done
        return f"buffers NOT written ({type(exc).__name__})"


def supervise(settings, workers: int) -> int:
    """Run ``workers`` server processes on one port and keep them running.

    A worker that dies is started again. SIGHUP restarts them one at a time (a rolling
    restart: a new worker starts listening before the old one drains), so phones always have
    a process to reconnect to. SIGTERM/SIGINT stop them all gracefully.
    """
    from server.infra.db import make_engine
    from server.infra.migrate import upgrade

    if settings.auto_migrate:
        upgrade(make_engine(settings))
    multiproc_dir = settings.prometheus_multiproc_dir
    made_dir = not multiproc_dir
    if made_dir:  # the workers' metrics are summed from files in one directory
        import tempfile

        multiproc_dir = tempfile.mkdtemp(prefix="goodmob-metrics-")
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": multiproc_dir,
        "AUTO_MIGRATE": "false",
        "WORKERS": "1",
        "REDIS_URL": settings.redis_url,
        "HOST": settings.host,
        "PORT": str(settings.port),
    }

    def spawn(ready_pipe: bool = False):
        if not ready_pipe:
            return subprocess.Popen(
                [sys.executable, "-m", "server", "serve", "--reuse-port"], env=env
            )
        read_fd, write_fd = os.pipe()
        child = subprocess.Popen(
            [sys.executable, "-m", "server", "serve", "--reuse-port"],
            env={**env, _READY_FD: str(write_fd)},
            pass_fds=(write_fd,),
        )
        os.close(write_fd)
        return child, read_fd

    children = [spawn() for _ in range(workers)]
    print(f"{workers} server processes on port {settings.port}, joined by Redis", flush=True)
    state = {"stopping": False, "roll": False}

    def stop(*_):
        state["stopping"] = True
        for child in children:
            if child.poll() is None:
                child.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, lambda *_: state.update(roll=True))
    while not state["stopping"]:
        if state["roll"]:
            state["roll"] = False
            for i, old in enumerate(list(children)):
                children[i], ready_fd = spawn(ready_pipe=True)
                # The old one stops only once the new one listens (subscribed to Redis
                # first), or after WORKER_BOOT_S: phones always have a process to go to.
                if not _wait_ready(ready_fd, children[i], settings.worker_boot_s):
                    print(f"worker {children[i].pid} not listening after "
                          f"{settings.worker_boot_s:g} s; stopping {old.pid} anyway",
                          file=sys.stderr, flush=True)  # fmt: skip
                old.terminate()
                old.wait()
                _forget_metrics(old.pid, multiproc_dir)
            print("rolling restart done", file=sys.stderr, flush=True)
        for i, child in enumerate(children):
            if child.poll() is not None and not state["stopping"]:
                _forget_metrics(child.pid, multiproc_dir)
                print(f"worker {child.pid} exited ({child.returncode}); starting another",
                      file=sys.stderr, flush=True)  # fmt: skip
                children[i] = spawn()
        time.sleep(0.2)
    deadline = time.monotonic() + settings.shutdown_timeout_s + 5
    for child in children:
        try:
            child.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    if made_dir:
        import shutil

        shutil.rmtree(multiproc_dir, ignore_errors=True)
    return 0


def _forget_metrics(pid: int, multiproc_dir: str) -> None:
    """Drop a dead worker's live gauges (its counters stay in the sums)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, multiproc_dir)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    from server import cli

    if argv and argv[0] in cli.COMMANDS:  # the admin commands (see server/cli.py)
        return cli.main(argv)
    parser = argparse.ArgumentParser(prog="python -m server", description=__doc__)
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "migrate"])
    parser.add_argument("--host", help="address to listen on (default: HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default: PORT or 5000)")
    parser.add_argument("--workers", type=int, help="server processes (default: WORKERS or 1)")
    parser.add_argument("--redis-url", help="Redis for several processes (default: REDIS_URL)")
    parser.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    try:
        overrides = {
            k: v
            for k, v in (
                ("host", args.host),
                ("port", args.port),
                ("workers", args.workers),
                ("redis_url", args.redis_url),
            )
            if v is not None
        }
        settings = load_settings(**overrides)
    except ConfigError as exc:
        print(f"Configuration error: {exc}", file=sys.stderr)
        return 2
    from server.infra.logs import configure_logging

    configure_logging(settings)

    if args.command == "migrate":
        from server.infra.db import make_engine
        from server.infra.migrate import current_revision, upgrade

        engine = make_engine(settings)
        upgrade(engine)
        print(f"Database at revision {current_revision(engine)}.")
        return 0

    shown = "localhost" if settings.host in ("127.0.0.1", "0.0.0.0", "::") else settings.host
    if not args.reuse_port:
        print(f"Good Mob is running: open http://{shown}:{settings.port}/", flush=True)
    if settings.workers > 1 and not args.reuse_port:
        return supervise(settings, settings.workers)
    return serve(settings, reuse_port=args.reuse_port)


if __name__ == "__main__":
    sys.exit(main())
