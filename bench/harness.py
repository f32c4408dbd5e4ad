"""A real server under load for the realtime benchmarks: a database (SQLite or PostGIS), one
``python -m server`` process, a mob with tasks, participants, and Node worker processes of
phones (bench/phones.mjs) that talk to the server over real WebSocket connections. The
database, the server process and the organizer are support/'s (db.py, server.py,
organizer.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import insert, select

from bench.common import ROOT
from config import load_settings
from server.domain.participants import TOKEN_SALT
from server.infra.db import make_engine
from server.infra.models import Mob, Participant
from support.db import PG_ADMIN_URL, Database
from support.organizer import Organizer
from support.park import box_polygon, square_box
from support.server import ServerProcess, cpu_seconds

PG_ADMIN = os.environ.get("BENCH_POSTGRES_URL", PG_ADMIN_URL)
SECRET_KEY = "bench-secret-" + "z" * 40


def progress(name: str, msg: str) -> None:
    print(f"[bench.{name}] {msg}", file=sys.stderr, flush=True)


def renice(pid: int, nice: int) -> None:
    """Give one of our own processes a scheduling priority (negative: ahead of others)."""
    if nice:
        os.setpriority(os.PRIO_PROCESS, pid, nice)


def database(backend: str) -> Database:
    """A fresh database for one run: a temporary SQLite file or a new PostGIS database."""
    return Database(backend, admin_url=PG_ADMIN, prefix="goodmob_bench_")


def engine_for(db: Database):
    """An engine on the run's database, as the server makes it (SpatiaLite loaded)."""
    settings = load_settings({}, env="test", database_url=db.url, secret_key=SECRET_KEY)
    return make_engine(settings)


class Server(ServerProcess):
    """One ``python -m server`` process (production settings), its output kept in a
    temporary file that ``stop()`` returns and removes."""

    def __init__(self, database_url: str, nice: int = 0, **env):
        log = Path(tempfile.mkstemp(prefix="goodmob-bench-server-", suffix=".log")[1])
        env = {
            # Every phone of the benchmark comes from 127.0.0.1: lift the per-address limits
            # (real phones have their own addresses); the per-participant limits stay.
            "RATE_LIMIT_REPORT_ADDR": "1000000/1",
            "RATE_LIMIT_JOIN_ADDR": "1000000/1",
            "SOCKET_MAX_PER_ADDRESS": "100000",
            **env,
        }
        base = {"GOODMOB_ENV": "production", "SECRET_KEY": SECRET_KEY}
        super().__init__(database_url, output=log, base_env=base, nice=nice, cwd=ROOT, **env)

    def start(self, timeout_s: float = 60) -> Server:
        super().start(timeout_s)
        return self

    def stop(self, timeout_s: float = 30) -> str:
        """SIGTERM (a clean shutdown), then the server's output."""
        output = super().stop(timeout_s)
        self.log_path.unlink(missing_ok=True)
        return output


def seed_mob(server: Server, side_m: float, spacing_m: float, capacity: int) -> dict:
    """An organizer and a published mob over a square zone, with generated tasks (REST)."""
    org = Organizer(server.url).sign_up(email="bench@example.org", name="Bench")
    zone = box_polygon(square_box(side_m))
    return org.published_mob(
        zone, spacing_m=spacing_m, capacity=capacity, title="Bench", action="Go", duration_s=600
    )


def seed_participants(db: Database, mob_id: str, n: int) -> list[int]:
    """``n`` participants of the mob, inserted in one transaction; their ids."""
    engine = engine_for(db)
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
