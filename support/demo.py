"""A demo a newcomer can watch: a sample mob in a park and a crowd of simulated phones.

``run_demo`` talks to a running server only through its public API, like any organizer
(``support.organizer``): it signs up and logs in a demo organizer, creates a mob over a
Berlin park with generated tasks, publishes it with GO a few minutes away, and starts the
benchmarks' phone simulator (``bench/sim/run.mjs`` in crowd mode: the PWA's own
``clock.js`` with its ``CLOCK_CONFIG`` and the Socket.IO client) as a Node subprocess. Its
phones join at random moments, walk from outside the park into it (``report_location``
every ~2 s), take the tasks the server gives them, fire at GO on their synchronized clocks
(their own clocks are off by up to ±10 min) and confirm their deeds a few seconds later.
Open the printed live URL to watch, the participant URL to join from your own browser.

Usage::

    ./scripts/run --demo [--demo-phones 30] [--demo-go-in 180] [server options]

starts the server (``python -m server`` with the other options) and the demo against it, and
stops both on Ctrl-C; that is ``.venv/bin/python -m support.demo --serve [--phones N]
[--go-in-s S] -- [server options]``. With a server already running::

    .venv/bin/python -m support.demo [--url http://127.0.0.1:5000] [--phones 30] [--go-in-s 180]

From code, once the server answers::

    demo = run_demo("http://127.0.0.1:5000", phones=30, go_in_s=180)
    ...
    demo.stop()   # the crowd also leaves by itself two minutes after the mob ends
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from config import REPO_ROOT, ConfigError, load_settings
from support.organizer import Organizer
from support.park import PARK
from support.server import ServerExited, ServerProcess, ServerTimeout, wait_until_up

__all__ = ["Demo", "DEMO_PARK", "run_demo", "create_demo_mob", "serve_with_demo", "start_crowd"]

SIMULATOR = REPO_ROOT / "bench" / "sim" / "run.mjs"

DEMO_PARK = PARK  # Volkspark am Weinberg, Berlin-Mitte (support/park.py)
DEMO_TITLE = "Demo: clean up Volkspark am Weinberg"
DEMO_ACTION = "Pick up every piece of litter within 10 m of your spot"
DEMO_DURATION_S = 300
TASK_SPACING_M = 30


def _say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


@dataclass
class Demo:
    """A running demo: the mob, its URLs, the organizer's login and the crowd process."""

    mob_id: str
    live_url: str
    participant_url: str
    organizer_email: str
    organizer_password: str
    crowd: subprocess.Popen | None = None
    progress: dict = field(default_factory=dict)

    def stop(self) -> None:
        """Sends the simulated phones home (closing their stdin makes them leave)."""
        if self.crowd is None or self.crowd.poll() is not None:
            return
        try:
            self.crowd.stdin.close()
            self.crowd.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            self.crowd.terminate()
            self.crowd.wait(5)


def create_demo_mob(base_url: str, *, phones: int, go_in_s: float) -> tuple[dict, str, str]:
    """Sign up a demo organizer and publish the sample mob; (mob, email, password)."""
    email = f"demo-{secrets.token_hex(3)}@example.org"
    password = secrets.token_urlsafe(9)
    org = Organizer(base_url).sign_up(email=email, password=password, name="Good Mob demo")
    mob = org.create_mob(
        DEMO_PARK,
        title=DEMO_TITLE,
        description="A simulated crowd walks in, takes tasks and acts at GO. "
        "Join from your own browser: you are one of them.",
        action=DEMO_ACTION,
        go_at=datetime.now(UTC) + timedelta(seconds=go_in_s),
        duration_s=DEMO_DURATION_S,
    )
    tasks = org.generate_tasks(mob["id"], TASK_SPACING_M, "litter", capacity=1, timeout=30)
    count = len(tasks["features"])
    # Room for every simulated phone and a few visitors.
    capacity = max(1, -(-(phones + 10) // max(1, count)))
    if capacity > 1:
        org.generate_tasks(mob["id"], TASK_SPACING_M, "litter", capacity=capacity, timeout=30)
    return org.publish(mob["id"]), email, password


def start_crowd(
    base_url: str, mob_id: str, *, phones: int, go_in_s: float, crowd: dict | None = None
) -> subprocess.Popen:
    """The Node crowd (bench/sim/run.mjs, crowd mode) as a subprocess; it leaves when its
    stdin closes (so it never outlives the process that started it) or after the mob.
    ``crowd`` overrides the simulator's settings (see run.mjs, e.g. ``walk_speed_mps``)."""
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("Node.js is needed for the simulated crowd (install node ≥ 18)")
    config = {
        "mode": "crowd",
        "rest_url": base_url,
        "mob": mob_id,
        "phones": phones,
        "seed": secrets.randbelow(1_000_000),
        # Joins spread over the first part of the wait, so the map fills up gradually.
        "join_spread_ms": int(min(60_000, max(5_000, go_in_s * 1000 / 4))),
        # No "clock" key: the phones run the PWA's CLOCK_CONFIG (pwa/js/clock.js) as it is.
        "deed_after_ms": [2_000, 15_000],
        "stay_ms": 120_000,
        "exit_on_stdin_close": True,
        **(crowd or {}),
    }
    return subprocess.Popen(
        [node, str(SIMULATOR), json.dumps(config)],
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        bufsize=1,
    )


def _follow(demo: Demo) -> None:
    """Prints the crowd's progress (a background thread): when someone joins, gets a task,
    fires or confirms a deed, and otherwise every 30 s."""
    shown, last = None, 0.0
    for line in demo.crowd.stdout:
        try:
            msg = json.loads(line)
        except json.JSONDecodeError:
            continue
        if msg.get("event") not in ("progress", "exit"):
            continue
        demo.progress = msg
        key = (msg["joined"], msg["tasks"], msg["fired"], msg["deeds"])
        if key == shown and time.monotonic() - last < 30 and msg["event"] != "exit":
            continue
        shown, last = key, time.monotonic()
        _say(
            f"crowd: {msg['joined']} joined, {msg['in_zone']} in the zone, {msg['tasks']} with "
            f"a task, {msg['fired']} fired GO, {msg['deeds']} deeds confirmed"
        )
        if msg["event"] == "exit":
            _say("the simulated phones have gone home")


def run_demo(
    base_url: str,
    *,
    phones: int = 30,
    go_in_s: float = 180,
    public_url: str | None = None,
    crowd: dict | None = None,
) -> Demo:
    """Create the sample mob on the server at ``base_url`` and start the simulated crowd.

    Returns at once (the crowd runs in a subprocess); prints the live and participant URLs
    (on ``public_url``, the address to open in a browser, default ``base_url``) and the demo
    organizer's login. ``crowd`` overrides the simulator's settings (see ``start_crowd``).
    """
    base_url = base_url.rstrip("/")
    shown = (public_url or base_url).rstrip("/")
    try:
        wait_until_up(base_url, timeout_s=30)
    except ServerTimeout:
        raise RuntimeError(f"no Good Mob server answers at {base_url}") from None
    mob, email, password = create_demo_mob(base_url, phones=phones, go_in_s=go_in_s)
    demo = Demo(
        mob_id=mob["id"],
        live_url=f"{shown}/live/{mob['id']}",
        participant_url=f"{shown}/m/{mob['id']}",
        organizer_email=email,
        organizer_password=password,
    )
    _say(f"sample mob {mob['id']!r} published: GO at {mob['go_at']} (in {go_in_s:.0f} s)")
    _say(f"watch it live:       {demo.live_url}")
    _say(f"join it as a phone:  {demo.participant_url}")
    _say(f"organizer login at {shown}/organize: {email} / {password}")
    if phones <= 0:
        return demo
    try:
        demo.crowd = start_crowd(base_url, mob["id"], phones=phones, go_in_s=go_in_s, crowd=crowd)
    except (RuntimeError, OSError) as exc:
        _say(f"no simulated crowd: {exc}")
        return demo
    threading.Thread(target=_follow, args=(demo,), daemon=True).start()
    _say(f"{phones} simulated phones are on their way (bench/sim/run.mjs, pid {demo.crowd.pid})")
    return demo


def _server_address(server_args: list[str]) -> tuple[str, int]:
    """Where ``python -m server <server_args>`` will listen: (host, port)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    known, _ = parser.parse_known_args(server_args)
    try:
        settings = load_settings()
        host, port = settings.host, settings.port
    except ConfigError:
        host, port = os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", "5000"))
    return known.host or host, known.port or port


def _client_host(host: str, *, browser: bool = False) -> str:
    """The host this machine's clients reach the server at (a wildcard address → loopback)."""
    if host in ("", "0.0.0.0", "::", "127.0.0.1", "::1", "localhost"):
        return "localhost" if browser else "127.0.0.1"
    return host


def _url(host: str, port: int, *, browser: bool) -> str:
    host = _client_host(host, browser=browser)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _port_taken(host: str, port: int) -> bool:
    """Does something already accept connections there (another server: the demo would
    otherwise talk to it)?"""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _demo_rate_limits(phones: int) -> dict[str, str]:
    """Per-address limits for the demo's server: every simulated phone comes from this
    machine's address (real phones have their own). Limits already set are kept."""
    limits = {
        "RATE_LIMIT_JOIN_ADDR": f"{max(60, 2 * phones)}/60",
        "RATE_LIMIT_REPORT_ADDR": f"{max(600, 10 * phones)}/10",
        "RATE_LIMIT_DEED_ADDR": f"{max(300, 4 * phones)}/60",
    }
    return {k: v for k, v in limits.items() if k not in os.environ}


def serve_with_demo(
    server_args: list[str], *, phones: int = 30, go_in_s: float = 180, crowd: dict | None = None
) -> int:
    """``./scripts/run --demo``: start ``python -m server <server_args>``, run the demo
    against it once it answers, and keep both running until Ctrl-C (or SIGTERM), which stops
    the crowd and then the server. The server's own output goes to this terminal too."""
    if server_args and not server_args[0].startswith("-") and server_args[0] != "serve":
        print(f"demo: the server must serve, not {server_args[0]!r}", file=sys.stderr)
        return 2
    host, port = _server_address(server_args)
    url = _url(host, port, browser=False)
    if _port_taken(_client_host(host), port):
        print(
            f"demo: something already listens on port {port}; stop it or pass --port N",
            file=sys.stderr,
        )
        return 1
    server = ServerProcess(
        None,  # DATABASE_URL and every other setting from this environment
        *server_args,
        host=host,
        port=port,
        url=url,
        output="inherit",
        base_env={},
        **_demo_rate_limits(phones),
    )

    def terminate(*_):
        raise KeyboardInterrupt

    # Ctrl-C (SIGINT, also when started in the background with SIGINT ignored) or SIGTERM.
    previous = {sig: signal.signal(sig, terminate) for sig in (signal.SIGINT, signal.SIGTERM)}
    demo = None
    try:
        try:
            server.start(timeout_s=60)
        except ServerExited:
            print(f"demo: the server exited ({server.proc.returncode})", file=sys.stderr)
            return 1
        except ServerTimeout:
            print(f"demo: the server does not answer at {url}", file=sys.stderr)
            return 1
        demo = run_demo(
            url,
            phones=phones,
            go_in_s=go_in_s,
            public_url=_url(host, port, browser=True),
            crowd=crowd,
        )
        _say("Ctrl-C stops the demo and the server")
        return server.proc.wait() or 0
    except KeyboardInterrupt:
        _say("stopping the demo and the server")
        return 0
    except RuntimeError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if demo is not None:
            demo.stop()
        server.stop(timeout_s=30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m support.demo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--url", default="http://127.0.0.1:5000", help="the running server")
    parser.add_argument("--phones", type=int, default=30, help="simulated phones (default 30)")
    parser.add_argument(
        "--go-in-s", type=float, default=180, help="GO this many seconds from now (default 180)"
    )
    parser.add_argument(
        "--serve",
        action="store_true",
        help="start the server too (python -m server with the arguments after --)",
    )
    parser.add_argument("server_args", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.phones < 0 or args.go_in_s < 1:
        parser.error("--phones must be ≥ 0 and --go-in-s ≥ 1")
    if args.serve:
        return serve_with_demo(args.server_args, phones=args.phones, go_in_s=args.go_in_s)
    if args.server_args:
        parser.error(f"unexpected arguments {args.server_args} (server options need --serve)")
    try:
        demo = run_demo(args.url, phones=args.phones, go_in_s=args.go_in_s)
    except RuntimeError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    if demo.crowd is None:
        return 0
    try:
        demo.crowd.wait()
    except KeyboardInterrupt:
        demo.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
