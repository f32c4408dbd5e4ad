"""Browser fixtures: a real server process, headless Debian Chromium, emulated phones.

- ``live_server``: ``python -m server`` on the test's database (emptied first by ``db``;
  one process per database, shared by the tests); ``.url`` is its base URL. Runs on SQLite
  only unless ``GOODMOB_BROWSER_BACKENDS=all`` (the API is tested on both backends
  elsewhere; the browser suite checks the pages).
- ``browser``: one session-scoped Playwright Chromium, launched from ``/usr/bin/chromium``
  (or ``CHROMIUM``) with ``executable_path``; Playwright never downloads a browser here.
- ``rest``: an organizer signed up on ``live_server`` (``rest.published_mob()``,
  ``rest.start_now(id, lead_s)``, ``rest.mob(id)``, ``rest.deeds(id)``).
- ``phone``: a factory of browser contexts that look like a phone (360×740, touch, mobile)
  at a position, in a time zone, with an optional wall-clock offset. Uncaught page errors
  fail the test at teardown.

Locally the suite is skipped with a one-line reason when Chromium or Playwright is missing;
with ``CI=true`` it fails instead (as ``tests/conftest.py`` does for services).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

from support.organizer import Organizer
from support.park import PARK_CENTER
from support.server import ServerProcess
from tests.conftest import IN_CI, unavailable
from tests.factories import PARK, future

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ALL_BACKENDS = os.environ.get("GOODMOB_BROWSER_BACKENDS", "") == "all"
# Speed-ups for a test server: GO can be brought to a few seconds from now.
# Tests have no internet: the tile URL points at a port the browser refuses at once, so the
# maps run on their plain background without waiting for a network timeout.
SERVER_ENV = {
    "START_NOW_MIN_LEAD_S": "2",
    "SCHEDULER_MAX_SLEEP_S": "0.05",
    "TILE_URL": "http://127.0.0.1:9/{z}/{x}/{y}.png",
    # Emulated phones jump between fixes faster than people walk; the plausibility rule
    # itself is tested in tests/server.
    "LOCATION_MAX_SPEED_MPS": "1000",
}
PHONE_VIEWPORT = {"width": 360, "height": 740}


def pytest_collection_modifyitems(config, items):
    """Keep one backend for the browser tests unless GOODMOB_BROWSER_BACKENDS=all."""
    if ALL_BACKENDS:
        return
    here = Path(__file__).parent
    keep, drop = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        in_here = here in Path(str(item.fspath)).parents
        (drop if in_here and params.get("database_url") == "postgis" else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="module")
def _server_processes():
    """One server process per database for a test module, started on first use, stopped
    after it: left running, its phase scheduler would advance the mobs of later tests that
    share the database."""
    processes: dict[str, ServerProcess] = {}
    yield processes
    for process in processes.values():
        process.stop()


@pytest.fixture()
def live_server(database_url, app, db, _server_processes):
    """A real ``python -m server`` process on this test's database (emptied by ``db``).

    The process is shared by the tests of a database (starting one takes seconds); every
    test starts on empty tables, and a process that died is replaced.
    """
    process = _server_processes.get(database_url)
    if process is None or process.proc.poll() is not None:
        # Its output is drained (a full pipe would stall the server).
        process = ServerProcess(database_url, output="drain", **SERVER_ENV).start()
        _server_processes[database_url] = process
    return process


class Rest(Organizer):
    """An organizer on a live server (support/organizer.py) with the tests' mob."""

    def published_mob(self, spacing_m: float = 25, go_in_min: float = 60, **fields) -> dict:
        """A published mob over tests.factories.PARK with a task grid; returns its JSON."""
        body = {
            "title": "Clean the Weinberg park",
            "description": "Bring gloves; bags are at the gate.",
            "action": "Pick up the litter around your spot",
            "go_at": future(go_in_min),
            "duration_s": 120,
            **fields,
        }
        return super().published_mob(PARK, spacing_m=spacing_m, **body)

    def deeds(self, mob_id: str) -> list[dict]:
        return self.get(f"/mobs/{mob_id}/deeds")["deeds"]


@pytest.fixture()
def rest(live_server) -> Rest:
    """An organizer signed up on the live server (``rest.published_mob()`` …)."""
    return Rest(live_server.url).sign_up()


@pytest.fixture(scope="session")
def playwright_instance():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed (pip install -r requirements-dev.txt)")
    if not os.access(CHROMIUM, os.X_OK):
        unavailable(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(playwright_instance):
    """Headless Debian Chromium through Playwright (never a downloaded browser)."""
    try:
        chromium = playwright_instance.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-dev-shm-usage",
                "--autoplay-policy=no-user-gesture-required",
            ],
        )
    except Exception as exc:  # a broken install: say so in one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        unavailable(f"Chromium at {CHROMIUM} did not start: {first}")
    yield chromium
    chromium.close()


def clock_offset_script(offset_ms: float) -> str:
    """JavaScript that moves the page's wall clock (Date) by ``offset_ms``.

    ``performance.now()`` and ``performance.timeOrigin`` stay true, as on a phone whose clock
    is set wrong: the app must still fire GO at the server's instant.
    """
    return f"""(() => {{
  const offset = {float(offset_ms)!r};
  const RealDate = Date;
  function FakeDate(...args) {{
    if (!new.target) return new RealDate(RealDate.now() + offset).toString();
    return args.length === 0 ? new RealDate(RealDate.now() + offset) : new RealDate(...args);
  }}
  FakeDate.prototype = RealDate.prototype;
  FakeDate.now = () => RealDate.now() + offset;
  FakeDate.parse = RealDate.parse;
  FakeDate.UTC = RealDate.UTC;
  globalThis.Date = FakeDate;
}})();"""


@pytest.fixture()
def phone(browser, request):
    """Factory: ``phone(lat=, lon=, accuracy=, timezone_id=, clock_offset_ms=, ...)`` → context.

    Each call makes a new, isolated browser context (its own storage, service worker and
    IndexedDB) with geolocation granted at the given position. Move it later with
    ``context.set_geolocation({...})``; take it offline with ``context.set_offline(True)``.
    The context gets ``base_url`` of ``live_server`` when the test uses that fixture.
    """
    base_url = None
    if "live_server" in request.fixturenames:
        base_url = request.getfixturevalue("live_server").url
    contexts = []
    errors: list[str] = []

    def make(
        *,
        lat: float = PARK_CENTER["latitude"],
        lon: float = PARK_CENTER["longitude"],
        accuracy: float = 8,
        timezone_id: str = "Europe/Berlin",
        locale: str = "en-GB",
        clock_offset_ms: float = 0,
        viewport: dict | None = None,
        permissions: tuple = ("geolocation",),
        **options,
    ):
        context = browser.new_context(
            viewport=viewport or PHONE_VIEWPORT,
            device_scale_factor=2,
            is_mobile=True,
            has_touch=True,
            geolocation={"latitude": lat, "longitude": lon, "accuracy": accuracy},
            permissions=list(permissions),
            timezone_id=timezone_id,
            locale=locale,
            base_url=base_url,
            service_workers="allow",
            **options,
        )
        if clock_offset_ms:
            context.add_init_script(clock_offset_script(clock_offset_ms))
        context.on("page", lambda page: page.on("pageerror", lambda exc: errors.append(f"{exc}")))
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        with contextlib.suppress(Exception):  # the browser may already be gone
            context.close()
    if errors:
        pytest.fail("uncaught errors in the pages:\n" + "\n".join(errors), pytrace=False)


__all__ = ["IN_CI", "PARK_CENTER", "Rest", "clock_offset_script"]
