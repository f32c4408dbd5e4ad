"""The installable app: pages and files served, manifest and icons, the service worker's
versioned app-shell cache, and the app opening offline in Chromium."""

from __future__ import annotations

import gzip
import json
import struct
import time

import brotli

from server.http import pages


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_pages_are_served_and_nothing_else_of_pwa(client):
    for path in ("/", "/m/abc12345"):
        r = client.get(path)
        assert r.status_code == 200 and r.mimetype == "text/html", path
    assert b'src="/js/participant.js"' in client.get("/m/x").data
    for path in ("/package.json", "/node_modules/leaflet/package.json", "/js/../package.json",
                 "/icons/../../config/__init__.py", "/.gitignore"):  # fmt: skip
        assert client.get(path).status_code == 404, path
    assert client.get("/js/participant.js").mimetype == "text/javascript"
    config = client.get("/config.json").get_json()
    assert config["tile_url"].startswith("http")


def test_manifest_and_icons(client):
    r = client.get("/manifest.webmanifest")
    assert r.mimetype == "application/manifest+json"
    manifest = json.loads(r.data)
    assert manifest["display"] == "standalone" and manifest["start_url"] == "/"
    purposes = set()
    for icon in manifest["icons"]:
        r = client.get(icon["src"])
        assert r.status_code == 200, icon
        if icon["type"] == "image/png":
            w, h = png_size(r.data)
            assert f"{w}x{h}" == icon["sizes"], icon
        purposes.add(icon["purpose"])
    assert {"any", "maskable"} <= purposes
    sizes = {i["sizes"] for i in manifest["icons"]}
    assert {"192x192", "512x512"} <= sizes


def test_service_worker_is_served_at_the_root_with_its_shell_and_version(client):
    r = client.get("/sw.js")
    assert r.mimetype == "text/javascript" and r.headers["Service-Worker-Allowed"] == "/"
    assert "no-cache" in r.headers["Cache-Control"]
    body = r.get_data(as_text=True)
    build = pages.shell_build()
    assert f'"version": "{build["version"]}"' in body
    shell = build["shell"]
    for url in ("/", "/m.html", "/js/participant.js", "/js/clock.js", "/css/app.css",
                "/manifest.webmanifest", "/vendor/leaflet/leaflet.js",
                "/vendor/socket.io/socket.io.esm.min.js", "/icons/icon-192.png"):  # fmt: skip
        assert url in shell, url
    assert not any(u.startswith(("/api/", "/socket.io/")) for u in shell)
    for url in shell:  # everything precached exists (a missing file fails the install)
        assert client.get(url).status_code == 200, url


def test_the_cache_version_follows_the_shell_files(tmp_path, monkeypatch):
    (tmp_path / "js").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html>")
    (tmp_path / "manifest.webmanifest").write_text("{}")
    module = tmp_path / "js" / "app.js"
    module.write_text("export const a = 1;")
    monkeypatch.setattr(pages, "PWA_DIR", tmp_path)
    first = pages.shell_build()
    assert first == pages.shell_build()
    module.write_text("export const a = 2;")
    second = pages.shell_build()
    assert second["version"] != first["version"]
    assert second["shell"] == ["/", "/manifest.webmanifest", "/js/app.js"]


def _cached_urls(page) -> list[str]:
    return page.evaluate(
        """async () => {
          const urls = [];
          for (const key of await caches.keys()) {
            const cache = await caches.open(key);
            for (const r of await cache.keys()) urls.push(key + " " + new URL(r.url).pathname);
          }
          return urls;
        }"""
    )


def test_service_worker_installs_and_the_app_opens_offline(live_server, rest, phone):
    mob = rest.published_mob()
    context = phone()
    page = context.new_page()
    page.goto(f"/m/{mob['id']}", wait_until="domcontentloaded")
    page.locator("#view-join").wait_for(state="visible", timeout=10_000)
    page.fill("#nickname", "Sam")
    page.click("#join-btn")
    page.locator("#view-main").wait_for(state="visible", timeout=10_000)
    page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=15_000)
    cached = _cached_urls(page)
    assert len({u.split()[0] for u in cached}) == 1  # one versioned cache
    assert all(u.startswith("goodmob-shell-") for u in cached)
    paths = {u.split()[1] for u in cached}
    assert {"/js/participant.js", "/vendor/leaflet/leaflet.js", "/m.html"} <= paths
    assert not any(" /api/" in u or " /socket.io/" in u for u in cached), cached

    # Offline: the shell comes from the cache; the mob from what this phone saved.
    context.set_offline(True)
    page.goto("/", wait_until="domcontentloaded")
    assert "Many hands" in page.locator(".hero h1").inner_text()
    page.goto(f"/m/{mob['id']}", wait_until="domcontentloaded")
    page.locator("#view-main").wait_for(state="visible", timeout=10_000)
    assert page.locator("#top-title").inner_text() == mob["title"]
    assert "offline" in page.locator("#conn").inner_text()

    # Back online it reconnects by itself.
    context.set_offline(False)
    page.wait_for_function("() => window.__goodmobState().connection === 'joined'", timeout=15_000)


def test_text_files_are_sent_compressed_with_their_own_etag(client):
    raw = (pages.PWA_DIR / "vendor/leaflet/leaflet.js").read_bytes()
    plain = client.get("/vendor/leaflet/leaflet.js")
    assert plain.data == raw and "Content-Encoding" not in plain.headers
    assert "Accept-Encoding" in plain.headers["Vary"]

    gz = client.get("/vendor/leaflet/leaflet.js", headers={"Accept-Encoding": "gzip, deflate"})
    assert gz.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in gz.headers["Vary"]
    assert gzip.decompress(gz.data) == raw
    assert int(gz.headers["Content-Length"]) == len(gz.data) < len(raw) / 3
    assert gz.headers["ETag"] != plain.headers["ETag"]
    again = client.get("/vendor/leaflet/leaflet.js", headers={
        "Accept-Encoding": "gzip", "If-None-Match": gz.headers["ETag"]})  # fmt: skip
    assert again.status_code == 304

    br = client.get("/js/participant.js", headers={"Accept-Encoding": "gzip, deflate, br, zstd"})
    assert br.headers["Content-Encoding"] == "br"
    assert brotli.decompress(br.data) == (pages.PWA_DIR / "js/participant.js").read_bytes()
    refused = client.get("/js/participant.js", headers={"Accept-Encoding": "br;q=0, gzip"})
    assert refused.headers["Content-Encoding"] == "gzip"

    # Pages, the worker and the manifest too; images as they are.
    for path in ("/m/abc12345", "/", "/sw.js", "/manifest.webmanifest", "/css/app.css"):
        r = client.get(path, headers={"Accept-Encoding": "gzip"})
        assert r.headers.get("Content-Encoding") == "gzip", path
    page = client.get("/m/abc12345", headers={"Accept-Encoding": "gzip"})
    assert b'src="/js/participant.js"' in gzip.decompress(page.data)
    assert page.headers["Cache-Control"] == "no-cache"
    worker = client.get("/sw.js", headers={"Accept-Encoding": "gzip"})
    assert client.get("/sw.js", headers={"Accept-Encoding": "gzip",
                      "If-None-Match": worker.headers["ETag"]}).status_code == 304  # fmt: skip
    png = client.get("/icons/icon-192.png", headers={"Accept-Encoding": "gzip, br"})
    assert "Content-Encoding" not in png.headers


def test_the_api_is_never_compressed(client):
    r = client.get("/api/mobs?lat=52.53&lon=13.4", headers={"Accept-Encoding": "gzip, br"})
    assert r.status_code == 200 and "Content-Encoding" not in r.headers
    r = client.get("/api/mobs/nosuchmob", headers={"Accept-Encoding": "gzip, br"})
    assert r.status_code == 404 and "Content-Encoding" not in r.headers


def test_the_shell_is_split_by_page_role():
    build = pages.shell_build()
    core = set(build["core"])
    assert {"/m.html", "/", "/js/participant.js", "/js/clock.js", "/vendor/leaflet/leaflet.js",
            "/vendor/socket.io/socket.io.esm.min.js", "/css/app.css"} <= core  # fmt: skip
    assert not any("geoman" in u or "organize" in u for u in core), core
    organize = set(build["pages"]["/organize.html"])
    assert {"/vendor/leaflet-geoman/leaflet-geoman.min.js", "/js/organize.js",
            "/js/mapstyle.js", "/css/organize.css"} <= organize  # fmt: skip
    assert set(build["shell"]) >= core | organize


def test_the_organizers_files_are_cached_when_the_organizer_page_opens(live_server, rest, phone):
    mob = rest.published_mob()
    context = phone()
    page = context.new_page()
    page.goto(f"/m/{mob['id']}")
    page.locator("#view-join").wait_for(state="visible", timeout=10_000)
    page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=15_000)
    paths = {u.split()[1] for u in _cached_urls(page)}
    assert "/js/participant.js" in paths
    assert not any("geoman" in p or "organize" in p for p in paths), sorted(paths)

    page.goto("/organize")
    deadline = time.monotonic() + 15
    # organize.html is cached by the page-role precache only (cache.addAll: all or nothing).
    while " /organize.html" not in " ".join(_cached_urls(page)):
        assert time.monotonic() < deadline, "the organizer's files were never cached"
        page.wait_for_timeout(100)
    paths = {u.split()[1] for u in _cached_urls(page)}
    assert {"/organize.html", "/js/organize.js", "/css/organize.css",
            "/vendor/leaflet-geoman/leaflet-geoman.min.js"} <= paths  # fmt: skip
