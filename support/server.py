"""One real ``python -m server`` process: started with settings in its environment, waited for
on ``/healthz``, stopped, its output kept; with ``workers`` > 1 a supervisor and its server
processes on one port, joined by Redis (``redis_env``).

    server = ServerProcess(database_url, TILE_URL="http://127.0.0.1:9/").start()
    requests.get(f"{server.url}/api/mobs", ...)
    server.stop()

The environment is this process's, then ``base_env`` (by default ``TEST_ENV``: the test
settings and a fixed secret key), then ``DATABASE_URL``, then the keyword arguments. Its
output (stdout and stderr) goes, by ``output``:

- ``"pipe"`` (the default): to ``proc.stdout``, the first line already read into
  ``first_line``; whoever starts it reads the rest (a full pipe stalls the server);
- ``"drain"``: the same, read by a thread into ``lines`` (a long-running server);
- a path: to that file (``output_text()``, ``errors()``, ``warnings()``);
- ``"devnull"`` or ``"inherit"`` (this terminal).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

from config import REPO_ROOT
from support.ports import free_port

TEST_ENV = {"GOODMOB_ENV": "test", "SECRET_KEY": "integration-secret-" + "y" * 32}


class ServerExited(RuntimeError):
    """The server process ended before it answered."""


class ServerTimeout(RuntimeError):
    """The server did not answer ``/healthz`` in time."""


def wait_until_up(
    url: str,
    proc: subprocess.Popen | None = None,
    timeout_s: float = 30,
    ready=None,
) -> None:
    """Wait until ``url``/healthz answers 200 (``ready()``, if given, true first). Raises
    ``ServerExited`` when ``proc`` ends meanwhile, ``ServerTimeout`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        if proc is not None and proc.poll() is not None:
            raise ServerExited(f"the server exited ({proc.returncode})")
        if ready is None or ready():
            try:
                if requests.get(f"{url}/healthz", timeout=1).ok:
                    return
            except requests.RequestException:
                pass
        if time.monotonic() > deadline:
            raise ServerTimeout(f"no Good Mob server answers at {url} after {timeout_s:g} s")
        time.sleep(0.1)


def redis_env(url: str, prefix: str = "goodmob-test") -> dict[str, str]:
    """REDIS_URL and a pub/sub channel of one's own: channels are shared by every Redis
    database, so other Good Mob servers on this Redis neither see nor send these events."""
    return {"REDIS_URL": url, "REDIS_CHANNEL": f"{prefix}-{secrets.token_hex(4)}"}


def redis_unreachable(url: str) -> str | None:
    """Why Redis at ``url`` does not answer a PING (None: it does)."""
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except Exception as exc:
        return f"Redis unreachable at {url}: {type(exc).__name__}"
    return None


class ServerProcess:
    """``python -m server --host HOST --port PORT *args`` (see the module's docstring)."""

    def __init__(
        self,
        database_url: str | None = None,
        *args: str,
        port: int | None = None,
        host: str = "127.0.0.1",
        url: str | None = None,
        output: str | Path = "pipe",
        base_env: dict | None = None,
        workers: int = 1,
        redis_url: str = "",
        nice: int = 0,
        cwd: str | Path | None = None,
        **env: str,
    ):
        self.args = list(args)
        if workers > 1:
            self.args += ["--workers", str(workers), "--redis-url", redis_url]
        self.workers = workers
        self.host = host
        self.port = port or free_port()
        self.url = url or f"http://{host}:{self.port}"
        self.output = output
        self.log_path = None if output in ("pipe", "drain", "devnull", "inherit") else Path(output)
        self.nice = nice
        self.cwd = cwd
        self.env = {
            **os.environ,
            **(TEST_ENV if base_env is None else base_env),
            **({"DATABASE_URL": database_url} if database_url else {}),
            **env,
        }
        self.proc: subprocess.Popen | None = None
        self.first_line = ""
        self.lines: list[str] = []
        self._log = None

    def command(self) -> list[str]:
        host_port = ["--host", self.host, "--port", str(self.port)]
        return [sys.executable, "-m", "server", *host_port, *self.args]

    def migrate(self) -> None:
        """``python -m server migrate`` on this server's database (before ``start``)."""
        subprocess.run(
            [sys.executable, "-m", "server", "migrate"],
            cwd=self.cwd or REPO_ROOT,
            env=self.env,
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def start(self, timeout_s: float = 30) -> ServerProcess:
        piped = self.output in ("pipe", "drain")
        if self.log_path is not None:
            self._log = self.log_path.open("w")
            stdout, stderr = self._log, subprocess.STDOUT
        elif piped:
            stdout, stderr = subprocess.PIPE, subprocess.STDOUT
        elif self.output == "devnull":
            stdout = stderr = subprocess.DEVNULL
        else:
            stdout = stderr = None
        self.proc = subprocess.Popen(
            self.command(),
            cwd=self.cwd or REPO_ROOT,
            env=self.env,
            stdout=stdout,
            stderr=stderr,
            text=True,
        )
        if self.nice:
            os.setpriority(os.PRIO_PROCESS, self.proc.pid, self.nice)
        if piped:
            self.first_line = self.proc.stdout.readline().strip()
        if self.output == "drain":
            threading.Thread(target=self._drain, daemon=True).start()
        try:
            wait_until_up(self.url, self.proc, timeout_s, self._all_listening)
        except ServerExited as exc:
            rest = self.proc.stdout.read() if self.output == "pipe" else self.output_text()
            said = f"{self.first_line} {rest[-4000:]}".strip()
            raise ServerExited(f"{exc}: {said}" if said else str(exc)) from None
        except ServerTimeout:
            self.stop()
            raise
        return self

    def _drain(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())

    def _all_listening(self) -> bool:
        """Every server process listens (with ``workers``, each child has its own socket)."""
        if self.workers <= 1:
            return True
        kids = children(self.proc.pid)
        if len(kids) < self.workers:
            return False
        inodes = listening_inodes(self.port)
        return all(is_listening(pid, inodes) for pid in kids)

    def pids(self) -> list[int]:
        """The processes serving phones (the children of a ``workers`` supervisor)."""
        if self.proc is None:
            return []
        return children(self.proc.pid) if self.workers > 1 else [self.proc.pid]

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids())

    def rss_kb(self) -> int:
        return sum(rss_kb(pid) for pid in self.pids())

    def sockets(self) -> list[int]:
        """Open sockets per server process (phones, database, Redis, the listener)."""
        return [open_sockets(pid) for pid in self.pids()]

    def output_text(self) -> str:
        """What the server wrote so far (to its log file, or drained)."""
        if self.log_path is not None:
            return self.log_path.read_text() if self.log_path.exists() else ""
        return "\n".join(self.lines)

    def errors(self) -> list[str]:
        """ERROR/CRITICAL lines and tracebacks in the server's output."""
        bad = re.compile(r'"level":\s*"(ERROR|CRITICAL)"|\b(ERROR|CRITICAL)\b|Traceback')
        return [line for line in self.output_text().splitlines() if bad.search(line)]

    def warnings(self) -> list[str]:
        """WARNING lines in the server's output (e.g. a fallback taken under load)."""
        bad = re.compile(r'"level":\s*"WARNING"|\bWARNING\b')
        return [line for line in self.output_text().splitlines() if bad.search(line)]

    def stop(self, timeout_s: float = 10) -> str:
        """SIGTERM (a clean shutdown), SIGKILL after ``timeout_s``; the output kept."""
        if self.proc and self.proc.poll() is None:
            kids = self.pids() if self.workers > 1 else []
            self.proc.terminate()
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            for pid in kids:  # a supervisor killed before its workers stopped
                with contextlib.suppress(OSError):
                    if "--reuse-port" in Path(f"/proc/{pid}/cmdline").read_text():
                        os.kill(pid, signal.SIGKILL)
        if self._log:
            self._log.close()
            self._log = None
        return self.output_text()


# --- what a process uses (from /proc) ---------------------------------------------------------


def children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def open_sockets(pid: int) -> int:
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return 0
    n = 0
    for fd in fds:
        with contextlib.suppress(OSError):
            n += os.readlink(fd).startswith("socket:")
    return n


def listening_inodes(port: int) -> set[str]:
    """Inodes of the sockets listening on ``port`` (any address), from /proc/net/tcp{,6}."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if f[3] == "0A" and int(f[1].rsplit(":", 1)[1], 16) == port:  # 0A = LISTEN
                inodes.add(f[9])
    return inodes


def is_listening(pid: int, inodes: set[str]) -> bool:
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            return True
    return False
