"""A real server under load for the realtime benchmarks: a database (SQLite or PostGIS), one
``python -m server`` process, a mob with tasks, participants, and Node worker processes of
phones (bench/phones.mjs) that talk to the server over real WebSocket connections.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import requests
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import create_engine, insert, select, text

from bench.common import ROOT, organizer_headers
from config import load_settings
from server.domain.participants import TOKEN_SALT
from server.infra.db import make_engine
from server.infra.models import Mob, Participant

PG_ADMIN = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
SECRET_KEY = "bench-secret-" + "z" * 40
CENTRE = (13.4050, 52.5200)  # Berlin
M_PER_DEG_LAT = 111_320.0


def progress(name: str, msg: str) -> None:
    print(f"[bench.{name}] {msg}", file=sys.stderr, flush=True)


def square_zone(side_m: float, inset_m: float = 0.0) -> tuple[float, float, float, float]:
    """(west, south, east, north) of a square of ``side_m`` around CENTRE, shrunk by inset."""
    half = side_m / 2 - inset_m
    dlat = half / M_PER_DEG_LAT
    dlon = half / (M_PER_DEG_LAT * math.cos(math.radians(CENTRE[1])))
    return (CENTRE[0] - dlon, CENTRE[1] - dlat, CENTRE[0] + dlon, CENTRE[1] + dlat)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def renice(pid: int, nice: int) -> None:
    """Give one of our own processes a scheduling priority (negative: ahead of others)."""
    if nice:
        os.setpriority(os.PRIO_PROCESS, pid, nice)


class Database:
    """A fresh database for one run: a temporary SQLite file or a new PostGIS database."""

    def __init__(self, backend: str):
        self.backend = backend
        self._tmp = None
        self._name = None
        if backend == "sqlite":
            self._tmp = tempfile.mkdtemp(prefix="goodmob-bench-")
            self.url = f"sqlite:///{self._tmp}/bench.sqlite3"
            return
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        self._name = f"goodmob_bench_{secrets.token_hex(3)}"
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{self._name}"'))
        admin.dispose()
        self.url = PG_ADMIN.rsplit("/", 1)[0].replace("+psycopg2", "") + "/" + self._name
        engine = create_engine(PG_ADMIN.rsplit("/", 1)[0] + "/" + self._name)
        with engine.begin() as c:
            c.execute(text("CREATE EXTENSION postgis"))
        engine.dispose()

    def engine(self):
        settings = load_settings({}, env="test", database_url=self.url, secret_key=SECRET_KEY)
        return make_engine(settings)

    def drop(self) -> None:
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
        if self._name:
            admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
            with admin.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{self._name}" WITH (FORCE)'))
            admin.dispose()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Server:
    """One ``python -m server`` process (production settings), its output kept in a file."""

    def __init__(self, database_url: str, nice: int = 0, **env):
        self.nice = nice
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(tempfile.mkstemp(prefix="goodmob-bench-server-", suffix=".log")[1])
        self.env = {
            **os.environ,
            "GOODMOB_ENV": "production",
            "DATABASE_URL": database_url,
            "SECRET_KEY": SECRET_KEY,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            # Every phone of the benchmark comes from 127.0.0.1: lift the per-address limits
            # (real phones have their own addresses); the per-participant limits stay.
            "RATE_LIMIT_REPORT_ADDR": "1000000/1",
            "RATE_LIMIT_JOIN_ADDR": "1000000/1",
            "SOCKET_MAX_PER_ADDRESS": "100000",
            **env,
        }
        self.proc: subprocess.Popen | None = None
        self._log = self.log_path.open("w")

    def migrate(self) -> None:
        subprocess.run(
            [sys.executable, "-m", "server", "migrate"],
            cwd=ROOT,
            env=self.env,
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def start(self, timeout_s: float = 60) -> Server:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server", "serve"],
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        renice(self.proc.pid, self.nice)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited:\n{self.log_path.read_text()}")
            try:
                requests.get(f"{self.url}/healthz", timeout=1)
                return self
            except requests.ConnectionError:
                time.sleep(0.1)
        raise RuntimeError("server did not answer in time")

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.proc.pid)

    def stop(self) -> str:
        """SIGTERM (a clean shutdown), then the server's output."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self.log_path.exists():
            return ""
        self._log.close()
        output = self.log_path.read_text()
        self.log_path.unlink()
        return output


def seed_mob(server: Server, side_m: float, spacing_m: float, capacity: int) -> dict:
    """An organizer and a published mob over a square zone, with generated tasks (REST)."""
    api = f"{server.url}/api"
    headers = organizer_headers(api, "bench@example.org", "correct horse", "Bench")
    w, s, e, n = square_zone(side_m)
    zone = {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}
    go_at = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    body = {"title": "Bench", "action": "Go", "zone": zone, "go_at": go_at, "duration_s": 600}
    r = requests.post(f"{api}/mobs", json=body, headers=headers, timeout=10)
    r.raise_for_status()
    mob = r.json()
    r = requests.post(
        f"{api}/mobs/{mob['id']}/tasks/generate",
        json={"spacing_m": spacing_m, "kind": "litter", "capacity": capacity},
        headers=headers,
        timeout=60,
    )
    r.raise_for_status()
    mob["task_count"] = r.json()["count"]
    requests.post(f"{api}/mobs/{mob['id']}/publish", headers=headers, timeout=10).raise_for_status()
    return mob


def seed_participants(db: Database, mob_id: str, n: int) -> list[int]:
    """``n`` participants of the mob, inserted in one transaction; their ids."""
    engine = db.engine()
    try:
        with engine.begin() as c:
            mob_pk = c.scalar(select(Mob.pk).where(Mob.id == mob_id))
            rows = [
                {
                    "mob_pk": mob_pk,
                    "nickname": f"Phone {i}",
                    "nickname_chosen": True,
                    "ref_code": secrets.token_urlsafe(9)[:12],
                    "created_at": datetime.now(UTC),
                }
                for i in range(n)
            ]
            c.execute(insert(Participant), rows)
            ids = list(
                c.scalars(select(Participant.id).where(Participant.mob_pk == mob_pk).order_by("id"))
            )
    finally:
        engine.dispose()
    return ids


def tokens_for(ids: list[int], mob_id: str) -> list[str]:
    serializer = URLSafeTimedSerializer(SECRET_KEY, salt=TOKEN_SALT)
    return [serializer.dumps({"p": pid, "m": mob_id}) for pid in ids]


class PhoneWorkers:
    """N Node processes of bench/phones.mjs; each command goes to all, answers are gathered."""

    def __init__(self, n: int, nice: int = 0):
        self.procs = [
            subprocess.Popen(
                ["node", str(ROOT / "bench" / "phones.mjs")],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                bufsize=1,
            )
            for _ in range(n)
        ]
        for p in self.procs:
            renice(p.pid, nice)

    def send(self, i: int, msg: dict) -> None:
        self.procs[i].stdin.write(json.dumps(msg) + "\n")
        self.procs[i].stdin.flush()

    def read(self, i: int) -> dict:
        line = self.procs[i].stdout.readline()
        if not line:
            raise RuntimeError(f"phone worker {i} exited (code {self.procs[i].poll()})")
        answer = json.loads(line)
        if answer.get("event") == "error":
            raise RuntimeError(f"phone worker {i}: {answer['message']}")
        return answer

    def all(self, msg: dict | list[dict]) -> list[dict]:
        """Send a command to every worker (the same, or one each) and wait for all answers."""
        msgs = msg if isinstance(msg, list) else [msg] * len(self.procs)
        for i, m in enumerate(msgs):
            self.send(i, m)
        return [self.read(i) for i in range(len(self.procs))]

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(p.pid) for p in self.procs)

    def close(self) -> None:
        for i, p in enumerate(self.procs):
            if p.poll() is None:
                with contextlib.suppress(BrokenPipeError, OSError):
                    self.send(i, {"cmd": "quit"})
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def phone_configs(
    ids, tokens, box, rng: np.random.Generator, workers: int, edge_box=None, edge_share=0.0
) -> list[list[dict]]:
    """Phones split over the workers, each starting at a random point of ``box``; every
    1/``edge_share``-th phone walks in ``edge_box`` instead."""
    every = round(1 / edge_share) if edge_share > 0 else 0
    phones = []
    for k, (pid, tok) in enumerate(zip(ids, tokens, strict=True)):
        mine = edge_box if every and k % every == 0 else box
        w, s, e, n = mine
        phone = {"id": pid, "token": tok, "lon": rng.uniform(w, e), "lat": rng.uniform(s, n)}
        if mine is not box:
            phone["box"] = mine
        phones.append(phone)
    return [phones[i::workers] for i in range(workers)]


def busy_cores() -> float:
    """CPU time (in core-seconds) the whole machine has been busy since boot."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")
