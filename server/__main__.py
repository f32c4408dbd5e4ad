"""``python -m server [serve|migrate] [--host H] [--port P] [--workers N] [--redis-url URL]``.

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

# File descriptors a process needs besides its client sockets (database, Redis, files).
_SPARE_FDS = 256


def raise_open_file_limit(wanted_connections: int) -> str:
    """Raise RLIMIT_NOFILE to its hard limit; a line saying what was reached."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1_048_576)
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft < wanted_connections + _SPARE_FDS:
        return (
            f"warning: the open-file limit is {soft}, so this process can hold about "
            f"{max(0, soft - _SPARE_FDS)} connections, fewer than MAX_CONNECTIONS="
            f"{wanted_connections}; raise it (ulimit -n, LimitNOFILE= in systemd)"
        )
    return f"open-file limit {soft} (room for MAX_CONNECTIONS={wanted_connections})"


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
    from gevent import pywsgi
    from geventwebsocket.handler import WebSocketHandler

    from server import create_app, scheduler, socketio

    app = create_app(settings)
    print(raise_open_file_limit(settings.max_connections), file=sys.stderr, flush=True)
    stopping = []
    if settings.scheduler:
        socketio.start_background_task(scheduler.run, app, lambda: bool(stopping))
    server = pywsgi.WSGIServer(
        _listener(settings.host, settings.port, reuse_port),
        app,
        handler_class=WebSocketHandler,
        log=None if settings.env == "test" else "default",
    )

    def stop(*_):
        stopping.append(True)
        server.stop(timeout=5)

    import gevent

    gevent.signal_handler(signal.SIGTERM, stop)
    gevent.signal_handler(signal.SIGINT, stop)
    server.serve_forever()
    return 0


def supervise(settings, workers: int) -> int:
    """Start ``workers`` server processes on one port; stop them all on SIGTERM/SIGINT."""
    from server.db import make_engine
    from server.migrate import upgrade

    if settings.auto_migrate:
        upgrade(make_engine(settings))
    env = {
        **os.environ,
        "AUTO_MIGRATE": "false",
        "WORKERS": "1",
        "REDIS_URL": settings.redis_url,
        "HOST": settings.host,
        "PORT": str(settings.port),
    }
    children = [
        subprocess.Popen([sys.executable, "-m", "server", "serve", "--reuse-port"], env=env)
        for _ in range(workers)
    ]
    print(f"{workers} server processes on port {settings.port}, joined by Redis", flush=True)

    def stop(*_):
        for child in children:
            if child.poll() is None:
                child.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while any(child.poll() is None for child in children):
        time.sleep(0.2)
    return max(child.returncode or 0 for child in children)


def main(argv: list[str] | None = None) -> int:
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

    if args.command == "migrate":
        from server.db import make_engine
        from server.migrate import current_revision, upgrade

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
