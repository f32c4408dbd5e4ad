"""``python -m server [--host H] [--port P]``: serve Good Mob; ``python -m server migrate``."""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import sys  # noqa: E402

from config import ConfigError, load_settings  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m server", description=__doc__)
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "migrate"])
    parser.add_argument("--host", help="address to listen on (default: HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default: PORT or 5000)")
    args = parser.parse_args(argv)

    try:
        overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
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

    from server import create_app, socketio

    app = create_app(settings)
    shown = "localhost" if settings.host in ("127.0.0.1", "0.0.0.0", "::") else settings.host
    print(f"Good Mob is running: open http://{shown}:{settings.port}/", flush=True)
    socketio.run(app, host=settings.host, port=settings.port, log_output=settings.env != "test")
    return 0


if __name__ == "__main__":
    sys.exit(main())
