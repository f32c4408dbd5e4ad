"""Serves the PWA from pwa/: the pages, the service worker, the manifest and static files.

Routes: ``/`` (discover), ``/m/<id>`` (participant), ``/organize``, ``/live/<id>``,
``/live/c/<campaign id>`` (a campaign's world live map), ``/s/<id>`` (the after-action
summary), ``/sw.js``
(at the root so its scope is the whole app), ``/manifest.webmanifest``, ``/config.json`` (the
settings the pages need: the map tile URL) and the files under ``css/ js/ vendor/ icons/``.
Nothing else in pwa/ (node_modules, package files) is served.

The service worker's cache version is a hash of the app-shell files, written into ``sw.js``
when it is served: any change to a shell file changes ``sw.js``, so browsers install the new
worker, which fills a new cache and deletes the old one.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading

from flask import Blueprint, Response, current_app, jsonify, send_from_directory
from werkzeug.exceptions import NotFound

from config import REPO_ROOT

__all__ = ["pages", "shell_files", "shell_build"]

PWA_DIR = REPO_ROOT / "pwa"
# Top-level folders of pwa/ whose files are served as they are.
STATIC_DIRS = ("css", "js", "vendor", "icons")
# Pages by route; a page whose file does not exist (yet) is a 404.
PAGES = {"index": "index.html", "participant": "m.html", "organize": "organize.html",
         "live": "live.html", "summary": "summary.html",
         "campaign": "campaign.html"}  # fmt: skip
# Vendor files the pages load (precached); the rest of vendor/ (source maps) is not.
VENDOR_SHELL = (
    "vendor/leaflet/leaflet.js",
    "vendor/leaflet/leaflet.css",
    "vendor/leaflet/images/marker-icon.png",
    "vendor/leaflet/images/marker-icon-2x.png",
    "vendor/leaflet/images/marker-shadow.png",
    "vendor/leaflet/images/layers.png",
    "vendor/leaflet/images/layers-2x.png",
    "vendor/leaflet-geoman/leaflet-geoman.min.js",
    "vendor/leaflet-geoman/leaflet-geoman.css",
    "vendor/socket.io/socket.io.esm.min.js",
)
_BUILD_LINE = re.compile(r"^const BUILD = .*;$", re.MULTILINE)
_build_cache: dict = {}
_build_lock = threading.Lock()

pages = Blueprint("pages", __name__)


def _page(name: str):
    filename = PAGES[name]
    if not (PWA_DIR / filename).is_file():
        raise NotFound()
    response = send_from_directory(PWA_DIR, filename)
    response.headers["Cache-Control"] = "no-cache"
    return response


@pages.get("/")
def index():
    return _page("index")


@pages.get("/m/<mob_id>")
def participant(mob_id: str):
    return _page("participant")


@pages.get("/organize")
def organize():
    return _page("organize")


@pages.get("/live/<mob_id>")
def live(mob_id: str):
    return _page("live")


@pages.get("/live/c/<campaign_id>")
def live_campaign(campaign_id: str):
    return _page("campaign")


@pages.get("/s/<mob_id>")
def summary(mob_id: str):
    return _page("summary")


@pages.get("/config.json")
def client_config():
    """What the pages need to know about this server (no secrets): the map tiles."""
    tile_url = current_app.config["SETTINGS"].tile_url
    attribution = ""
    if "openstreetmap" in tile_url:
        attribution = '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a>'
    response = jsonify({"tile_url": tile_url, "tile_attribution": attribution})
    response.headers["Cache-Control"] = "no-cache"
    return response


@pages.get("/manifest.webmanifest")
def manifest():
    response = send_from_directory(PWA_DIR, "manifest.webmanifest")
    response.mimetype = "application/manifest+json"
    return response


def shell_files() -> list[str]:
    """The app shell's files, relative to pwa/: pages, css, js, icons, manifest, vendor."""
    files = [name for name in PAGES.values() if (PWA_DIR / name).is_file()]
    files.append("manifest.webmanifest")
    for folder in ("css", "js", "icons"):
        base = PWA_DIR / folder
        if base.is_dir():
            files += sorted(
                p.relative_to(PWA_DIR).as_posix()
                for p in base.rglob("*")
                if p.is_file() and not p.name.startswith(".") and p.suffix != ".py"
            )
    files += [f for f in VENDOR_SHELL if (PWA_DIR / f).is_file()]
    return files


def shell_build() -> dict:
    """``{"version": <hash of the shell files>, "shell": [URLs]}``; recomputed on changes."""
    files = shell_files()
    stamp = tuple((f, (PWA_DIR / f).stat().st_mtime_ns) for f in files)
    with _build_lock:
        if _build_cache.get("stamp") != stamp:
            digest = hashlib.sha256()
            for name in files:
                digest.update(name.encode() + b"\0" + (PWA_DIR / name).read_bytes())
            urls = ["/" if f == "index.html" else f"/{f}" for f in files]
            _build_cache.update(stamp=stamp, build={"version": digest.hexdigest()[:12],
                                                    "shell": urls})  # fmt: skip
        return _build_cache["build"]


@pages.get("/sw.js")
def service_worker():
    source = (PWA_DIR / "sw.js").read_text(encoding="utf-8")
    line = f"const BUILD = {json.dumps(shell_build())};"
    body = _BUILD_LINE.sub(lambda _m: line, source, count=1)
    response = Response(body, mimetype="text/javascript")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Service-Worker-Allowed"] = "/"
    return response


@pages.get("/<notapi:filename>")
def static_file(filename: str):
    if filename in PAGES.values():  # the pages by file name: the service worker caches them
        return _page(next(k for k, v in PAGES.items() if v == filename))
    top = filename.split("/", 1)[0]
    if top not in STATIC_DIRS or "/." in f"/{filename}" or filename.endswith(".py"):
        raise NotFound()
    return send_from_directory(PWA_DIR, filename)
