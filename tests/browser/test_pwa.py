"""The installable app: pages and files served, manifest and icons, the service worker's
versioned app-shell cache, and the app opening offline in Chromium."""

from __future__ import annotations

import json
import struct

from server import pages


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
