"""The demo (``./scripts/run --demo``, support/demo.py) against real server processes: a sample
mob, and a crowd of simulated phones (bench/sim/run.mjs under Node, the real Socket.IO
protocol) that join, walk in, take tasks, fire at GO and confirm deeds."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import requests

from config import REPO_ROOT
from support.demo import run_demo
from support.ports import free_port
from support.server import ServerProcess
from tests.conftest import unavailable

PHONES = 5
GO_IN_S = 20
# A brisk crowd, so the whole journey fits in well under a minute: start just outside the
# park, run (below the server's plausible-speed limit of 15 m/s), confirm soon after GO.
FAST_CROWD = {
    "join_spread_ms": 3_000,
    "start_outside_m": [5, 25],
    "walk_speed_mps": [6, 9],
    "report_every_ms": 1_000,
    "deed_after_ms": [500, 2_000],
}


def _need_node() -> None:
    if shutil.which("node") is None:
        unavailable("Node.js not found (the simulated crowd runs under Node)")
    if not (REPO_ROOT / "pwa" / "node_modules" / "socket.io-client").is_dir():
        unavailable("pwa/node_modules missing (scripts/setup.sh installs socket.io-client)")


def _mob(url: str, mob_id: str) -> dict:
    r = requests.get(f"{url}/api/mobs/{mob_id}", timeout=5)
    assert r.status_code == 200, r.text
    return r.json()


def test_demo_crowd_joins_fires_at_go_and_confirms_deeds(tmp_path):
    _need_node()
    server = ServerProcess(f"sqlite:///{tmp_path / 'demo.sqlite3'}").start()
    demo = None
    try:
        demo = run_demo(server.url, phones=PHONES, go_in_s=GO_IN_S, crowd=FAST_CROWD)
        assert demo.crowd is not None, "the simulated crowd did not start"
        assert demo.live_url == f"{server.url}/live/{demo.mob_id}"
        assert demo.participant_url == f"{server.url}/m/{demo.mob_id}"
        mob = _mob(server.url, demo.mob_id)
        assert mob["status"] in ("published", "gathering", "countdown")
        go_at_ms = mob["timeline"]["go_at_ms"]
        assert GO_IN_S - 5 < go_at_ms / 1000 - time.time() <= GO_IN_S

        deadline = time.monotonic() + GO_IN_S + 35
        while time.monotonic() < deadline:
            counters = _mob(server.url, demo.mob_id)["counters"]
            if counters["joined"] >= PHONES and counters["deeds_done"] >= 1:
                break
            assert demo.crowd.poll() is None, "the simulated crowd exited early"
            time.sleep(1)
        mob = _mob(server.url, demo.mob_id)
        counters = mob["counters"]
        assert counters["joined"] == PHONES, counters
        assert counters["matched"] >= 1, counters
        assert counters["deeds_done"] >= 1, (counters, demo.progress)
        assert mob["status"] == "action"
        # Deeds count only after GO: the phones fired on their synchronized clocks first.
        assert time.time() * 1000 >= go_at_ms
        assert demo.progress.get("fired", 0) >= 1 or counters["deeds_done"] >= 1
    finally:
        if demo is not None:
            demo.stop()
        server.stop()
    assert demo.crowd.poll() is not None, "the crowd outlived demo.stop()"


def test_demo_serve_starts_the_server_prints_the_urls_and_stops_both(tmp_path):
    """``./scripts/run --demo`` is ``python -m support.demo --serve``: it starts the server,
    prints the live map, participant and organizer URLs, and Ctrl-C stops everything."""
    port = free_port()
    env = {
        **os.environ,
        "GOODMOB_ENV": "test",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'serve.sqlite3'}",
        "SECRET_KEY": "integration-secret-" + "y" * 32,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "support.demo", "--serve", "--phones", "0", "--go-in-s", "120"]
        + ["--", "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip())
            if "Ctrl-C stops" in line:
                break
        text = "\n".join(lines)
        assert "Ctrl-C stops" in text, text
        live = next(x for x in lines if "watch it live" in x).split()[-1]
        joining = next(x for x in lines if "join it as a phone" in x).split()[-1]
        assert live.startswith(f"http://localhost:{port}/live/")
        assert joining.startswith(f"http://localhost:{port}/m/")
        assert any("/organize: demo-" in x for x in lines), text
        mob_id = live.rsplit("/", 1)[1]
        url = f"http://127.0.0.1:{port}"
        assert requests.get(f"{url}/live/{mob_id}", timeout=5).status_code == 200
        assert _mob(url, mob_id)["title"].startswith("Demo:")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    try:
        requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
        raise AssertionError("the server still answers after the demo stopped")
    except requests.ConnectionError:
        pass
