"""Availability under the December attack (issue 15, findings 3-5): a bystander's /healthz
and API read while one attack at a time runs against a real server with its default settings.

Usage: .venv/bin/python -m bench.attack [--backend sqlite|postgis|both] [--sockets 3000]
       [--slow-bodies 40] [--hold-s 20] [--frame-mib 256] [--skip-generate] [--write]

One ``python -m server`` process (gevent, production defaults, every limit as shipped) on a
fresh database, an organizer with a draft mob and a follower. A bystander process asks
``GET /healthz`` every 100 ms and one ordinary API read (``GET /api/mobs?lat=…&lon=…``, a
nearby search in the database) every 250 ms, each with a 10 s timeout, and samples the
server's RSS (``/proc/<pid>/status``) every 100 ms. The attacks, one after the other:

- idle: nothing (the baseline);
- frame (4): one WebSocket whose first frame declares ``--frame-mib`` MiB, its payload sent
  as fast as the server takes it;
- sockets (4): ``--sockets`` WebSockets from one address, held ``--hold-s`` s then closed;
- slow bodies (5): ``--slow-bodies`` requests (half ``POST /api/followers/me/follows`` with a
  follower token, half ``PATCH /api/mobs/{id}`` with the organizer's) whose headers promise a
  200-byte body of which 10 bytes are sent, held ``--hold-s`` s;
- generate 60 m / 5 m (3): a 2,000-vertex star zone (~1.1 km²) and ``POST
  /api/mobs/{id}/tasks/generate`` at 60 m and at 5 m spacing (300 s timeout).

Per attack: the bystander's /healthz and API-read p50/p99/max and failures (no answer within
10 s, or not 200), the server's RSS before, at its peak and after, and what the attacker saw.
"""

from __future__ import annotations

import argparse
import base64
import math
import multiprocessing as mp
import os
import resource
import socket
import struct
import sys
import time
from datetime import UTC, datetime

import numpy as np
import requests

from bench.common import git_revision, machine, write_section
from bench.harness import Server, busy_cores, database, progress
from support.organizer import Organizer
from support.park import BERLIN as CENTRE
from support.park import M_PER_DEG_LAT, box_polygon

WS_PATH = "/socket.io/?EIO=4&transport=websocket"
NEAR = {"lat": CENTRE[1], "lon": CENTRE[0], "radius_m": 2000}


def _say(msg: str) -> None:
    progress("attack", msg)


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# --- the bystander (its own process, so the attacker's work does not delay its clock) ---


def _bystander(url: str, pid: int, stop, out) -> None:
    import threading

    samples: list[tuple[str, float, float, bool]] = []  # (kind, at, seconds, ok)
    lock = threading.Lock()

    def probe(kind: str, path: str, params: dict | None, every_s: float) -> None:
        session = requests.Session()
        while not stop.is_set():
            t0 = time.time()
            ok = False
            try:
                ok = session.get(url + path, params=params, timeout=10).status_code == 200
            except requests.RequestException:
                session = requests.Session()
            took = time.time() - t0
            with lock:
                samples.append((kind, t0, took, ok))
            stop.wait(max(0.0, every_s - took))

    def memory() -> None:
        while not stop.is_set():
            try:
                with lock:
                    samples.append(("rss", time.time(), rss_mb(pid), True))
            except OSError:
                return
            stop.wait(0.1)

    threads = [
        threading.Thread(target=probe, args=("healthz", "/healthz", None, 0.1)),
        threading.Thread(target=probe, args=("read", "/api/mobs", NEAR, 0.25)),
        threading.Thread(target=memory),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.send(samples)


# --- raw clients ----------------------------------------------------------------------


def frame_header(length: int, opcode: int = 1, mask: bytes = b"\x11\x22\x33\x44") -> bytes:
    first = 0x80 | opcode
    if length < 126:
        return bytes([first, 0x80 | length]) + mask
    if length < 65536:
        return bytes([first, 0x80 | 126]) + struct.pack("!H", length) + mask
    return bytes([first, 0x80 | 127]) + struct.pack("!Q", length) + mask


def ws_open(port: int, timeout_s: float = 10) -> tuple[socket.socket, int]:
    """A raw WebSocket handshake to Engine.IO: (socket, HTTP status)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(
        f"GET {WS_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        data = s.recv(4096)
        if not data:
            return s, 0
        head += data
    return s, int(head.split(b" ", 2)[1])


def attack_frame(server: Server, mib: int) -> dict:
    length = mib * 1024 * 1024
    s, status = ws_open(server.port)
    s.settimeout(0.5)
    s.sendall(frame_header(length))
    chunk = b"4" * (1 << 20)
    sent, t0, closed_by = 0, time.monotonic(), "nothing (all sent)"
    while sent < length and time.monotonic() - t0 < 60:
        try:
            sent += s.send(chunk[: min(len(chunk), length - sent)])
        except TimeoutError:
            try:  # the server stopped reading: did it close?
                data = s.recv(65536)
                if not data or b"\x88" in data[:64]:
                    closed_by = "the server (close frame)" if data else "the server (EOF)"
                    break
            except TimeoutError:
                continue
        except OSError as exc:
            closed_by = f"the server ({type(exc).__name__})"
            break
    else:
        if sent >= length:
            closed_by = "nothing (all sent)"
    s.close()
    return {"note": f"upgrade {status}; {sent / 2**20:,.1f} MiB sent; closed by {closed_by}"}


def attack_sockets(server: Server, count: int, hold_s: float) -> dict:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, count + 512)), hard))
    held, statuses = [], {}
    for _ in range(count):
        try:
            s, status = ws_open(server.port)
        except OSError as exc:
            statuses[type(exc).__name__] = statuses.get(type(exc).__name__, 0) + 1
            continue
        statuses[status] = statuses.get(status, 0) + 1
        if status == 101:
            held.append(s)
        else:
            s.close()
    time.sleep(hold_s)
    for s in held:
        s.close()
    shown = ", ".join(f"{k}: {v:,}" for k, v in sorted(statuses.items(), key=str))
    return {"note": f"{count:,} WebSocket upgrades from 127.0.0.1 ({shown}), held {hold_s:g} s"}


def attack_slow_bodies(server: Server, seed: dict, count: int, hold_s: float) -> dict:
    raws = []
    for i in range(count):
        if i % 2:
            line = f"PATCH /api/mobs/{seed['mob_id']} HTTP/1.1"
            token = seed["organizer"]
        else:
            line, token = "POST /api/followers/me/follows HTTP/1.1", seed["follower"]
        s = socket.create_connection(("127.0.0.1", server.port), timeout=hold_s + 30)
        s.sendall(
            f"{line}\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: application/json\r\nContent-Length: 200\r\n\r\n"
            '{"title": '.encode()
        )
        raws.append(s)
    deadline = time.monotonic() + hold_s
    answers: dict = {}
    for s in raws:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = s.recv(4096)
            key = data.split(b" ", 2)[1].decode() if data else "closed"
        except TimeoutError:
            key = "still waiting"
        except OSError as exc:
            key = type(exc).__name__
        answers[key] = answers.get(key, 0) + 1
    time.sleep(max(0.0, deadline - time.monotonic()))
    for s in raws:
        s.close()
    shown = ", ".join(f"{k}: {v}" for k, v in sorted(answers.items()))
    return {"note": f"{count} stalled bodies held {hold_s:g} s; the server answered {shown}"}


def star_zone(vertices: int = 2000, outer_m: float = 800, inner_m: float = 440) -> dict:
    """A star of ``vertices`` vertices around CENTRE (~1.1 km² with the defaults)."""
    lon0, lat0 = CENTRE
    m_lon = M_PER_DEG_LAT * math.cos(math.radians(lat0))
    ring = []
    for i in range(vertices):
        r = outer_m if i % 2 == 0 else inner_m
        a = 2 * math.pi * i / vertices
        ring.append([lon0 + r * math.cos(a) / m_lon, lat0 + r * math.sin(a) / M_PER_DEG_LAT])
    ring.append(ring[0])
    return {"type": "Polygon", "coordinates": [ring]}


def attack_generate(server: Server, seed: dict, spacing_m: float) -> dict:
    headers = {"Authorization": f"Bearer {seed['organizer']}"}
    t0 = time.monotonic()
    try:
        r = requests.post(
            f"{server.url}/api/mobs/{seed['star_id']}/tasks/generate",
            json={"spacing_m": spacing_m, "kind": "litter"},
            headers=headers,
            timeout=300,
        )
        code = r.json().get("error", {}).get("code") if r.status_code >= 400 else None
        what = f"{r.status_code}" + (f" {code}" if code else f", {r.json().get('count')} tasks")
    except requests.RequestException as exc:
        what = type(exc).__name__
    return {"note": f"answered {what} in {time.monotonic() - t0:.1f} s"}


# --- one run ----------------------------------------------------------------------------


def seed(server: Server) -> dict:
    org = Organizer(server.url).sign_up(email="attack@example.org", name="Bench")
    lon, lat = CENTRE
    d = 0.002
    square = box_polygon((lon - d, lat - d, lon + d, lat + d))
    base = {"title": "Attack", "action": "Stay", "duration_s": 600}
    mob_id = org.create_mob(square, **base)["id"]
    org.request("POST", f"/mobs/{mob_id}/publish")  # its answer is not checked
    star_id = org.create_mob(star_zone(), timeout=30, **base)["id"]
    r = requests.post(f"{server.url}/api/followers", timeout=10)
    r.raise_for_status()
    return {
        "organizer": org.token,
        "mob_id": mob_id,
        "star_id": star_id,
        "follower": r.json()["follower_token"],
    }


def summarize(samples: list, t0: float, t1: float) -> dict:
    out = {}
    for kind in ("healthz", "read"):
        rows = [(s, ok) for k, at, s, ok in samples if k == kind and t0 <= at < t1]
        lat = np.asarray([s for s, _ in rows]) * 1000
        out[kind] = {
            "n": len(rows),
            "failures": sum(1 for _, ok in rows if not ok),
            "p50": float(np.percentile(lat, 50)) if len(lat) else float("nan"),
            "p99": float(np.percentile(lat, 99)) if len(lat) else float("nan"),
            "max": float(lat.max()) if len(lat) else float("nan"),
        }
    rss = [s for k, at, s, _ in samples if k == "rss" and t0 <= at < t1]
    out["rss_peak"] = max(rss) if rss else float("nan")
    return out


def run_backend(backend: str, args) -> dict:
    _say(f"{backend}: database and server")
    db = database(backend)
    server = Server(db.url)
    phases = []
    try:
        server.migrate()
        server.start()
        seeded = seed(server)
        stop = mp.Event()
        mine, theirs = mp.Pipe(duplex=False)
        bystander = mp.Process(target=_bystander, args=(server.url, server.proc.pid, stop, theirs))
        bystander.start()
        time.sleep(2)  # the bystander's first samples
        busy0, wall0 = busy_cores(), time.monotonic()
        attacks = [
            ("idle (baseline)", "-", lambda: (time.sleep(args.hold_s / 2), {"note": ""})[1]),
            (f"one frame declaring {args.frame_mib} MiB", "4",
             lambda: attack_frame(server, args.frame_mib)),
            (f"{args.sockets:,} WebSockets from one address", "4",
             lambda: attack_sockets(server, args.sockets, args.hold_s)),
            (f"{args.slow_bodies} never-finished bodies", "5",
             lambda: attack_slow_bodies(server, seeded, args.slow_bodies, args.hold_s)),
        ]  # fmt: skip
        if not args.skip_generate:
            attacks += [
                ("tasks/generate at 60 m, 2,000-vertex star", "3",
                 lambda: attack_generate(server, seeded, 60)),
                ("tasks/generate at 5 m, 2,000-vertex star", "3",
                 lambda: attack_generate(server, seeded, 5)),
            ]  # fmt: skip
        for name, finding, attack in attacks:
            _say(f"{backend}: {name}")
            before = rss_mb(server.proc.pid)
            t0 = time.time()
            result = attack()
            time.sleep(2)  # the bystander's probes in flight finish; the server settles
            t1 = time.time()
            after = rss_mb(server.proc.pid)
            phases.append(
                {"name": name, "finding": finding, "t0": t0, "t1": t1, "before": before,
                 "after": after, **result}
            )  # fmt: skip
        busy = (busy_cores() - busy0) / (time.monotonic() - wall0)
        stop.set()
        samples = mine.recv()
        bystander.join()
    finally:
        output = server.stop()
        db.drop()
    for phase in phases:
        phase.update(summarize(samples, phase["t0"], phase["t1"]))
    errors = [line for line in output.splitlines() if "Traceback" in line]
    return {"backend": backend, "phases": phases, "busy": busy, "tracebacks": len(errors)}


def _ms(v: float) -> str:
    return "—" if v != v else f"{v:,.0f}"


def markdown(results: list[dict], args, argv: list[str]) -> str:
    cmd = " ".join([".venv/bin/python -m bench.attack", *argv])
    lines = [
        "## Availability under attack (issue 15)",
        "",
        f"`{cmd}` — one server process (`python -m server`: gevent, production defaults, "
        "every limit as shipped) on a fresh database. A bystander process asks `/healthz` "
        "every 100 ms and `GET /api/mobs?lat=…&lon=…` (a nearby search in the database) every "
        "250 ms, 10 s timeout each, while one attack at a time runs (see bench/attack.py). "
        "Failures: no answer within 10 s or not 200. RSS from `/proc/<pid>/status`: before "
        "the attack, its peak meanwhile (sampled every 100 ms), and 2 s after it ended.",
        "",
        f"Machine: {machine()}; server, bystander, attacker and database share its cores. "
        f"Working tree on commit {git_revision()}, {datetime.now(UTC).strftime('%Y-%m-%d')}.",
        "",
        "Targets: `/healthz` stays under 1 s during each of findings 3–5; the 256 MiB frame "
        "raises RSS by less than 10 MB.",
    ]
    for res in results:
        lines += [
            "",
            f"**{res['backend']}** (cores in use by the whole machine meanwhile: "
            f"{res['busy']:.2f} of {os.cpu_count()}; tracebacks in the server's log: "
            f"{res['tracebacks']})",
            "",
            "| finding | attack | /healthz p50 / p99 / max ms | fails | API read p50 / p99 / "
            "max ms | fails | RSS before → peak → after MB | what the attacker saw |",
            "|---|---|---:|---:|---:|---:|---|---|",
        ]
        for p in res["phases"]:
            h, r = p["healthz"], p["read"]
            lines.append(
                f"| {p['finding']} | {p['name']} | {_ms(h['p50'])} / {_ms(h['p99'])} / "
                f"{_ms(h['max'])} | {h['failures']} of {h['n']} | {_ms(r['p50'])} / "
                f"{_ms(r['p99'])} / {_ms(r['max'])} | {r['failures']} of {r['n']} | "
                f"{p['before']:.0f} → {p['rss_peak']:.0f} → {p['after']:.0f} | {p['note']} |"
            )
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", choices=["sqlite", "postgis", "both"], default="sqlite")
    ap.add_argument("--sockets", type=int, default=3000)
    ap.add_argument("--slow-bodies", type=int, default=40)
    ap.add_argument("--hold-s", type=float, default=20.0)
    ap.add_argument("--frame-mib", type=int, default=256)
    ap.add_argument("--skip-generate", action="store_true", help="leave out finding 3")
    ap.add_argument("--write", action="store_true", help="update docs/BENCHMARKS.md")
    ap.add_argument(
        "--server-root", help="run the server from this checkout instead (a before/after run)"
    )
    args = ap.parse_args(argv)
    if args.server_root:
        import bench.harness

        bench.harness.ROOT = os.path.abspath(args.server_root)
    backends = ["sqlite", "postgis"] if args.backend == "both" else [args.backend]
    results = [run_backend(b, args) for b in backends]
    md = markdown(results, args, [a for a in argv if a != "--write"])
    print(md)
    if args.write:
        write_section("attack", md)
        _say("wrote docs/BENCHMARKS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
