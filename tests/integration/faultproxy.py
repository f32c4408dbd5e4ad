"""A small TCP proxy for fault tests: make PostgreSQL or Redis unreachable on demand.

The server under test gets the proxy's address (``DATABASE_URL`` / ``REDIS_URL``) instead of
the service's, so an outage is simulated without touching the machine's services::

    with FaultProxy("127.0.0.1", 5432) as pg:
        url = f"postgresql+psycopg2://postgres@127.0.0.1:{pg.port}/db"
        ...
        pg.cut()       # every open connection is closed; new ones are refused
        ...
        pg.restore()   # connections are accepted and forwarded again

``FaultProxy(..., connect_delay_s=5)`` forwards each new connection only after that long:
a slow network or a busy service, e.g. a Redis subscription that is not live yet.

``cut(mode="refuse")`` is what a stopped service looks like (the port is closed: a connect
fails at once with ECONNREFUSED). ``cut(mode="blackhole")`` is what a network partition
looks like: new connections are accepted but nothing is ever forwarded or answered, so a
client without timeouts waits forever; they are closed at ``restore()``.

Threads, not asyncio: one thread accepts, two threads pump each connection.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

__all__ = ["FaultProxy"]

_CHUNK = 65536
_ACCEPT_POLL_S = 0.1


class FaultProxy:
    """Forward ``127.0.0.1:<port>`` to ``target_host:target_port`` until ``cut()``."""

    def __init__(
        self,
        target_host: str,
        target_port: int,
        host: str = "127.0.0.1",
        connect_delay_s: float = 0.0,
    ):
        self.target = (target_host, target_port)
        self.host = host
        self.connect_delay_s = connect_delay_s  # each new connection waits this long first
        self.port = 0  # chosen by the kernel at start(), kept across cut()/restore()
        self.mode = "up"  # up | refuse | blackhole
        self.accepted = 0  # connections accepted and forwarded, for the tests' information
        self._lock = threading.Lock()
        self._pairs: set[tuple[socket.socket, socket.socket]] = set()
        self._held: set[socket.socket] = set()  # blackholed connections
        self._listener: socket.socket | None = None
        self._closed = False
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._listen()
        return self

    def close(self) -> None:
        self._closed = True
        self._stop_listening()
        self._drop_all()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.close()

    def url(self, template: str) -> str:
        """``template`` with ``{port}`` replaced by the proxy's port."""
        return template.replace("{port}", str(self.port))

    # --- faults -----------------------------------------------------------------------------

    def cut(self, mode: str = "refuse") -> None:
        """Close every open connection; refuse (port closed) or blackhole new ones."""
        if mode not in ("refuse", "blackhole"):
            raise ValueError(f"mode must be 'refuse' or 'blackhole', not {mode!r}")
        with self._lock:
            self.mode = mode
        if mode == "refuse":
            self._stop_listening()
        self._drop_all()

    def restore(self) -> None:
        """Accept and forward connections again (on the same port)."""
        with self._lock:
            was = self.mode
            self.mode = "up"
            held, self._held = self._held, set()
        for sock in held:
            _close(sock)
        if was == "refuse" or self._listener is None:
            self._listen()

    # --- internals --------------------------------------------------------------------------

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(512)
        listener.settimeout(_ACCEPT_POLL_S)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._thread = threading.Thread(
            target=self._accept_loop, args=(listener,), name=f"faultproxy:{self.port}", daemon=True
        )
        self._thread.start()

    def _stop_listening(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            _close(listener)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(2)

    def _accept_loop(self, listener: socket.socket) -> None:
        while self._listener is listener and not self._closed:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # the listener was closed (cut or close)
            client.settimeout(None)
            with self._lock:
                mode = self.mode
                if mode == "blackhole":
                    self._held.add(client)
                    continue
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        if self.connect_delay_s > 0:
            time.sleep(self.connect_delay_s)
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            _close(client)
            return
        upstream.settimeout(None)
        pair = (client, upstream)
        with self._lock:
            if self.mode != "up":
                _close(client)
                _close(upstream)
                return
            self._pairs.add(pair)
            self.accepted += 1
        for src, dst in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pump, args=(src, dst, pair), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, pair) -> None:
        try:
            while True:
                data = src.recv(_CHUNK)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        with self._lock:
            self._pairs.discard(pair)
        for sock in pair:
            _close(sock)

    def _drop_all(self) -> None:
        with self._lock:
            pairs, self._pairs = self._pairs, set()
            held = set()
            if self.mode != "blackhole":
                held, self._held = self._held, set()
        for pair in pairs:
            for sock in pair:
                _close(sock)
        for sock in held:
            _close(sock)


def _close(sock: socket.socket) -> None:
    """Shut down (wakes a thread blocked in recv/accept) and close, ignoring errors."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
