"""Security headers, Socket.IO origins and message size, cookies and tokens out of URLs.

The origin checks run against a real server process with real clients (python-socketio and a
bare websocket-client handshake), since a browser enforces nothing on WebSockets: the server
must refuse a cross-site handshake itself.
"""

from __future__ import annotations

import re
import threading
from dataclasses import replace
from html.parser import HTMLParser

import pytest
import requests
import socketio as sio_client
import websocket
from flask import Flask

from config import REPO_ROOT, load_settings
from server import socketio
from server.infra import security
from support.server import ServerProcess
from tests.factories import make_organizer, make_published_mob

PWA = REPO_ROOT / "pwa"
EVIL = "https://evil.example"
FRIEND = "https://friend.example"


def csp(response) -> dict[str, list[str]]:
    policy = response.headers["Content-Security-Policy"]
    return {d.split()[0]: d.split()[1:] for d in policy.split("; ")}


# --- headers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/", "/api/openapi.json", "/api/mobs/zzzzzzzz", "/healthz", "/nowhere"]
)
def test_every_response_carries_the_security_headers(client, path):
    r = client.get(path)
    h = r.headers
    policy = csp(r)
    assert policy["script-src"] == ["'self'"]  # no inline scripts, no eval, no other host
    assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    assert {"'self'", "data:", "blob:", "https://tile.openstreetmap.org"} <= set(policy["img-src"])
    assert {"'self'", "ws://localhost", "wss://localhost"} <= set(policy["connect-src"])
    assert "geolocation=(self)" in h["Permissions-Policy"]
    assert "screen-wake-lock=(self)" in h["Permissions-Policy"]
    assert "camera=()" in h["Permissions-Policy"]
    assert h["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert h["X-Content-Type-Options"] == "nosniff" and h["X-Frame-Options"] == "DENY"
    assert "Strict-Transport-Security" not in h  # not in development or tests
    assert "Set-Cookie" not in h
    if path.startswith("/api/"):
        assert h["Cache-Control"] == "no-store"


def test_the_configured_tile_host_is_allowed_for_images():
    settings = load_settings(
        {},
        env="test",
        secret_key="k" * 32,
        tile_url="https://{s}.tiles.example.com/{z}/{x}/{y}.png",
    )
    policy = security.content_security_policy(settings, "mob.example")
    assert "img-src 'self' data: blob: https://*.tiles.example.com;" in policy
    assert "connect-src 'self' ws://mob.example wss://mob.example https://*.tiles.example.com" in (
        policy
    )
    local = replace(settings, tile_url="/tiles/{z}/{x}/{y}.png")
    assert "img-src 'self' data: blob:;" in security.content_security_policy(local, "h")


def test_hsts_and_secure_cookies_in_production_only():
    prod = load_settings({}, env="production", secret_key="p" * 40)
    app = Flask(__name__)
    app.config["SETTINGS"] = prod
    security.install(app)
    app.add_url_rule("/", "index", lambda: "ok")
    r = app.test_client().get("/")
    assert r.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    assert app.config["SESSION_COOKIE_SECURE"] and app.config["SESSION_COOKIE_HTTPONLY"]


# --- the PWA's pages: no inline script (the CSP would block it) --------------------------------


class _ScriptFinder(HTMLParser):
    def __init__(self):
        super().__init__()
        self.problems: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name, value in attrs.items():
            if name.startswith("on"):
                self.problems.append(f"inline handler {name}= on <{tag}>")
            if name in ("href", "src", "action") and (value or "").lower().startswith(
                "javascript:"
            ):
                self.problems.append(f"javascript: URL in <{tag} {name}>")
        if tag == "script":
            self._in_script = "src" not in attrs
            if attrs.get("type") not in (None, "module", "text/javascript") and self._in_script:
                self._in_script = attrs.get("type") != "application/json"

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.problems.append(f"inline <script>: {data.strip()[:40]!r}")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False


@pytest.mark.parametrize("page", sorted(p.name for p in PWA.glob("*.html")))
def test_pages_have_no_inline_script(page):
    finder = _ScriptFinder()
    finder.feed((PWA / page).read_text(encoding="utf-8"))
    assert finder.problems == [], f"{page}: {finder.problems}"


def test_the_pwa_never_puts_a_token_in_a_url():
    pattern = re.compile(r"[?&](token|auth|access_token)=", re.IGNORECASE)
    for path in sorted((PWA / "js").rglob("*.js")) + sorted(PWA.glob("*.html")) + [PWA / "sw.js"]:
        text = path.read_text(encoding="utf-8")
        assert not pattern.search(text), f"{path.relative_to(REPO_ROOT)} puts a token in a URL"


# --- tokens only in the auth payload and the Authorization header ----------------------------


def test_a_token_in_the_url_is_not_accepted(app, client):
    token = make_organizer(client)
    mob = make_published_mob(client, token, spacing_m=40)
    joined = client.post(f"/api/mobs/{mob['id']}/participants", json={}).get_json()
    sc = socketio.test_client(
        app, namespace="/participant", query_string=f"token={joined['token']}"
    )
    assert not sc.is_connected("/participant")
    org = socketio.test_client(app, namespace="/organizer", query_string=f"token={token}")
    assert not org.is_connected("/organizer")
    r = client.get(f"/api/organizers/me/mobs?token={token}")
    assert r.status_code == 401 and r.get_json()["error"]["code"] == "auth_required"


# --- forwarded headers: trusted only behind PROXY_HOPS proxies -------------------------------

POLL = "/socket.io/?EIO=4&transport=polling"


def _with_hops(app, hops: int):
    before = app.config["SETTINGS"]
    app.config["SETTINGS"] = replace(before, proxy_hops=hops)
    return before


def test_forwarded_host_is_ignored_without_proxies_and_honoured_behind_one(app, client):
    """A page on another site cannot pass the origin check by naming its own host in
    X-Forwarded-Host when no proxy is configured; behind one proxy the host it forwarded is
    this server's (and a client's own entry to its left counts for nothing)."""
    spoof = {"Origin": "https://evil.example", "X-Forwarded-Host": "evil.example",
             "X-Forwarded-Proto": "https"}  # fmt: skip
    assert client.get(POLL, headers=spoof).status_code == 400
    assert not security.origin_allowed(
        app.config["SETTINGS"],
        "https://evil.example",
        {
            "HTTP_HOST": "goodmob.example",
            "wsgi.url_scheme": "http",
            "HTTP_X_FORWARDED_HOST": "evil.example",
            "HTTP_X_FORWARDED_PROTO": "https",
        },
    )  # fmt: skip  (the WebSocket upgrade is checked with the same function)
    before = _with_hops(app, 1)
    try:
        behind = {"Origin": "https://goodmob.example", "X-Forwarded-Host": "goodmob.example",
                  "X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}  # fmt: skip
        assert client.get(POLL, headers=behind).status_code == 200
        assert client.get(POLL, headers=spoof).status_code == 200  # the proxy vouches for it
        forged = {**spoof, "X-Forwarded-Host": "evil.example, goodmob.example"}
        assert client.get(POLL, headers=forged).status_code == 400
        assert security.origin_allowed(
            app.config["SETTINGS"], "https://goodmob.example",
            {"HTTP_HOST": "10.0.0.11:8000", "wsgi.url_scheme": "http",
             "HTTP_X_FORWARDED_HOST": "goodmob.example", "HTTP_X_FORWARDED_PROTO": "https"},
        )  # fmt: skip
    finally:
        app.config["SETTINGS"] = before


# --- Socket.IO origins and message size, against a real process --------------------------------


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    """One real server (its own SQLite file) that trusts FRIEND besides its own origin."""
    path = tmp_path_factory.mktemp("security") / "goodmob.sqlite3"
    server = ServerProcess(
        f"sqlite:///{path}", ALLOWED_ORIGINS=FRIEND, SOCKET_MAX_MESSAGE_BYTES="4096"
    ).start()
    yield server
    server.stop()


def _live_client(server, origin: str | None, transport: str) -> sio_client.Client:
    """A /live client whose handshake carries ``origin`` (None: no Origin header at all)."""
    if transport == "websocket":
        options = {"suppress_origin": True} if origin is None else {"origin": origin}
        client = sio_client.Client(reconnection=False, websocket_extra_options=options)
        headers = {}
    else:
        client = sio_client.Client(reconnection=False)
        headers = {} if origin is None else {"Origin": origin}
    client.connect(
        server.url, namespaces=["/live"], transports=[transport], headers=headers, wait_timeout=5
    )
    return client


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_cross_site_handshakes_are_refused(live_server, transport):
    for origin in (EVIL, "http://127.0.0.1.evil.example", "null"):
        with pytest.raises(sio_client.exceptions.ConnectionError):
            _live_client(live_server, origin, transport)


def test_own_and_configured_origins_and_non_browsers_connect(live_server):
    own = f"http://127.0.0.1:{live_server.port}"
    for origin in (own, FRIEND, None):  # its own page, a configured origin, a non-browser
        client = _live_client(live_server, origin, "websocket")
        assert client.connected
        client.disconnect()
        headers = {} if origin is None else {"Origin": origin}
        r = requests.get(
            f"{live_server.url}/socket.io/?EIO=4&transport=polling", headers=headers, timeout=5
        )
        assert r.status_code == 200 and r.text.startswith("0{")
        assert r.headers.get("Access-Control-Allow-Origin") == origin
        assert "Access-Control-Allow-Credentials" not in r.headers


def test_a_bare_websocket_handshake_from_another_site_gets_400(live_server):
    url = f"ws://127.0.0.1:{live_server.port}/socket.io/?EIO=4&transport=websocket"
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(url, origin=EVIL, timeout=5)
    assert refused.value.status_code == 400
    ws = websocket.create_connection(url, timeout=5)  # its default Origin is the server's own
    assert ws.recv().startswith("0{")  # the Engine.IO open packet
    ws.close()
    r = requests.get(
        f"{live_server.url}/socket.io/?EIO=4&transport=polling", headers={"Origin": EVIL}, timeout=5
    )
    assert r.status_code == 400
    r = requests.get(f"{live_server.url}/socket.io/?EIO=4&transport=polling", timeout=5)
    assert r.status_code == 200 and "Set-Cookie" not in r.headers


def test_an_oversized_socket_message_closes_only_that_connection(live_server):
    big = _live_client(live_server, None, "websocket")
    small = _live_client(live_server, None, "websocket")
    assert "error" in small.call("watch_mob", {"mob": "zzzzzzzz"}, namespace="/live", timeout=5)
    closed = threading.Event()
    big.on("disconnect", closed.set, namespace="/live")
    big.emit("watch_mob", {"mob": "x" * 10_000}, namespace="/live")  # over the 4096-byte limit
    assert closed.wait(10), "the server kept a connection that sent an oversized message"
    assert "error" in small.call("watch_mob", {"mob": "zzzzzzzz"}, namespace="/live", timeout=5)
    small.disconnect()
    big.disconnect()
    assert requests.get(f"{live_server.url}/healthz", timeout=5).status_code == 200
