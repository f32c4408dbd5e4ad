"""An organizer on a running server, through its HTTP API only (``requests``).

    org = Organizer(server.url).sign_up()        # POST /api/organizers, then log in
    mob = org.published_mob(PARK, spacing_m=25)  # create, generate tasks, publish
    org.start_now(mob["id"], lead_s=10)

Sign-up and log-in are two calls: the sign-up answers 202 without a token (it does not tell
whether the email was new); the token comes from ``POST /api/sessions``. A server from
before that change (a benchmark's ``--server-root``) answered 201 with a token, unread: both
kinds of server work.
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime, timedelta

import requests

from support.park import PARK


class ApiError(RuntimeError):
    """The server answered an error status (or never answered, after the retries)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class Organizer:
    """``post``/``get`` raise ``ApiError`` on an error status; ``call(…, expect=N)`` asserts
    the status (for tests). With ``retries``, a 5xx answer or a network error is retried
    (``2 s × attempt`` apart, each counted in ``errors``); a 4xx never is."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout: float = 10,
        retries: int = 0,
        on_retry=None,
    ):
        self.url = url.rstrip("/")
        self.api = f"{self.url}/api"
        self.headers: dict = {"Authorization": f"Bearer {token}"} if token else {}
        self.timeout = timeout
        self.retries = retries
        self.on_retry = on_retry  # on_retry(method, path, what) before each retry
        self.errors: dict[str, int] = {}  # "organizer:<what>" → count (server errors seen)
        self.email: str | None = None
        self.password: str | None = None

    @property
    def token(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        return auth.removeprefix("Bearer ") or None

    def sign_up(
        self,
        *,
        email: str | None = None,
        password: str = "correct horse",
        name: str = "Ada",
        statuses: tuple[int, ...] = (201, 202),
    ) -> Organizer:
        """A new organizer account (a random email unless given), then logged in. The
        sign-up's answer must be one of ``statuses``."""
        email = email or f"org-{secrets.token_hex(4)}@example.org"
        body = {"email": email, "password": password, "name": name}
        r = requests.post(f"{self.api}/organizers", json=body, timeout=self.timeout)
        if r.status_code not in statuses:
            raise ApiError(f"POST /organizers → {r.status_code} {r.text[:300]}", r.status_code)
        return self.log_in(email, password)

    def log_in(self, email: str, password: str) -> Organizer:
        body = {"email": email, "password": password}
        r = requests.post(f"{self.api}/sessions", json=body, timeout=self.timeout)
        if r.status_code != 201:
            raise ApiError(f"POST /sessions → {r.status_code} {r.text[:300]}", r.status_code)
        self.headers = {"Authorization": f"Bearer {r.json()['token']}"}
        self.email, self.password = email, password
        return self

    # --- requests ---------------------------------------------------------------------------

    def request(self, method: str, path: str, *, timeout: float | None = None, **kwargs):
        """The ``requests.Response`` of ``METHOD /api<path>`` (retried as the class says)."""
        timeout = timeout or self.timeout
        tries = 1 + self.retries
        for attempt in range(tries):
            try:
                r = requests.request(
                    method, f"{self.api}{path}", headers=self.headers, timeout=timeout, **kwargs
                )
            except requests.RequestException as exc:
                if not self.retries:
                    raise
                what = f"organizer:network_{type(exc).__name__}"
            else:
                if r.status_code < 500 or not self.retries:
                    return r
                what = f"organizer:http_{r.status_code}"
            self.errors[what] = self.errors.get(what, 0) + 1
            if self.on_retry:
                self.on_retry(method, path, what)
            time.sleep(2 * (attempt + 1))
        raise ApiError(f"{method} {path} failed {tries} times")

    def call(self, method: str, path: str, expect: int | None = None, **kwargs):
        """The JSON answer (None when empty); asserts the status when ``expect`` is given."""
        r = self.request(method, path, **kwargs)
        if expect is not None:
            assert r.status_code == expect, f"{method} {path} → {r.status_code} {r.text}"
        return r.json() if r.content else None

    def post(self, path: str, body: dict | None = None, timeout: float | None = None) -> dict:
        return self._ok("POST", path, json=body, timeout=timeout)

    def get(self, path: str, timeout: float | None = None) -> dict:
        return self._ok("GET", path, timeout=timeout)

    def _ok(self, method: str, path: str, **kwargs):
        r = self.request(method, path, **kwargs)
        if r.status_code >= 400:
            raise ApiError(f"{method} {path} → {r.status_code} {r.text[:300]}", r.status_code)
        return r.json() if r.content else None

    # --- mobs -------------------------------------------------------------------------------

    def create_mob(
        self,
        zone: dict = PARK,
        *,
        go_at: datetime | str | None = None,
        go_in: timedelta = timedelta(hours=2),
        duration_s: int = 600,
        title: str = "Clean the Weinberg park",
        action: str = "Pick up the litter around your spot",
        timeout: float | None = None,
        **fields,
    ) -> dict:
        """A draft mob (GO at ``go_at``, else ``go_in`` from now); its JSON."""
        go_at = go_at or datetime.now(UTC) + go_in
        body = {
            "title": title,
            "action": action,
            "zone": zone,
            "go_at": go_at if isinstance(go_at, str) else go_at.isoformat(),
            "duration_s": duration_s,
            **fields,
        }
        return self.post("/mobs", body, timeout=timeout)

    def generate_tasks(
        self,
        mob_id: str,
        spacing_m: float,
        kind: str = "litter",
        capacity: int | None = None,
        timeout: float = 60,
    ) -> dict:
        """``POST /mobs/{id}/tasks/generate``: the tasks as a FeatureCollection (and count)."""
        body = {"spacing_m": spacing_m, "kind": kind}
        if capacity is not None:
            body["capacity"] = capacity
        return self.post(f"/mobs/{mob_id}/tasks/generate", body, timeout=timeout)

    def publish(self, mob_id: str) -> dict:
        return self.post(f"/mobs/{mob_id}/publish")

    def published_mob(
        self,
        zone: dict = PARK,
        *,
        spacing_m: float = 25,
        kind: str = "litter",
        capacity: int | None = None,
        **fields,
    ) -> dict:
        """A mob with a grid of tasks, published; its JSON with ``task_count`` added."""
        mob = self.create_mob(zone, **fields)
        tasks = self.generate_tasks(mob["id"], spacing_m, kind, capacity)
        mob = self.publish(mob["id"])
        mob["task_count"] = len(tasks["features"])
        return mob

    def start_now(self, mob_id: str, lead_s: float) -> dict:
        """``POST /mobs/{id}/start-now``: GO ``lead_s`` from now; the mob's answer."""
        return self.post(f"/mobs/{mob_id}/start-now", {"lead_s": lead_s})

    def mob(self, mob_id: str) -> dict:
        return self.get(f"/mobs/{mob_id}")
