"""Serves the PWA from pwa/: the pages, the service worker, the manifest and static files.

Routes: ``/`` (discover), ``/m/<id>`` (participant), ``/organize``, ``/live/<id>``,
``/live/c/<campaign id>`` (a campaign's world live map), ``/s/<id>`` (the after-action
summary), ``/following`` (what this device follows), ``/sw.js``
(at the root so its scope is the whole app), ``/manifest.webmanifest``, ``/config.json`` (the
settings the pages need: the map tile URL) and the files under ``css/ js/ vendor/ icons/``.
Nothing else in pwa/ (node_modules, package files) is served.

The service worker's cache version is a hash of the app-shell files, written into ``sw.js``
when it is served: any change to a shell file changes ``sw.js``, so browsers install the new
worker, which fills a new cache and deletes the old one. ``sw.js`` also gets the shell by page
role (:func:`shell_roles`): what each page loads (its ``<link>``/``<script>`` files and the
modules they import), so a participant's first visit precaches only the participant's files
and the organizer's are cached when the organizer page is opened.

Compression (the embedded default has no proxy in front): text files — pages, ``sw.js``,
CSS, JavaScript, SVG, the manifest — are sent with ``Content-Encoding: br`` (when the
``brotli`` package is installed) or ``gzip`` if the browser accepts it, with ``Vary:
Accept-Encoding`` and an ETag of their own (``"<file etag>-br"``), so If-None-Match gives a
304 for each variant. Each file is compressed once per process and kept until its mtime or
size changes (:func:`encoded`). Images are sent as they are; ``/api/`` and ``/socket.io/`` are
never compressed (they are not served here; API bodies carry tokens and echo input).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import threading
from pathlib import Path

from flask import Blueprint, Response, current_app, jsonify, request, send_from_directory
from werkzeug.exceptions import NotFound

from config import REPO_ROOT

try:  # optional: a wheel on PyPI (no compiler); without it, gzip only
    import brotli
except ImportError:  # pragma: no cover - depends on the installed packages
    brotli = None

__all__ = ["pages", "shell_files", "shell_build", "shell_roles", "encoded", "ENCODINGS"]

PWA_DIR = REPO_ROOT / "pwa"
# Top-level folders of pwa/ whose files are served as they are.
STATIC_DIRS = ("css", "js", "vendor", "icons")
# Pages by route; a page whose file does not exist (yet) is a 404.
PAGES = {"index": "index.html", "participant": "m.html", "organize": "organize.html",
         "live": "live.html", "summary": "summary.html",
         "campaign": "campaign.html", "following": "following.html"}  # fmt: skip
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
# Types sent compressed when the browser accepts it (PNGs are compressed already).
COMPRESSIBLE = frozenset(
    {"text/html", "text/css", "text/javascript", "application/javascript", "image/svg+xml",
     "application/manifest+json", "application/json"}
)  # fmt: skip
# Smaller bodies gain less than the header costs.
MIN_COMPRESS_BYTES = 256
# Fast settings (a file is compressed once per process, on its first request): brotli 5 is
# within ~10 % of brotli 11 at 1/50 of its time; gzip 6 within 1 % of gzip 9.
ENCODINGS = (("br", lambda data: brotli.compress(data, quality=5)),) if brotli else ()
ENCODINGS += (("gzip", lambda data: gzip.compress(data, compresslevel=6, mtime=0)),)
_encoded_cache: dict[tuple[str, str], tuple[object, bytes]] = {}
_build_cache: dict = {}
_build_lock = threading.Lock()

pages = Blueprint("pages", __name__)


def _accepted_encoding() -> str | None:
    """The best encoding of ENCODINGS that this request accepts (br before gzip), or None."""
    accept = request.accept_encodings
    for name, _compress in ENCODINGS:
        if accept[name] > 0:
            return name
    return None


def encoded(key: str, stamp: object, data: bytes | None, encoding: str, path: Path | None = None):
    """``data`` (or the file at ``path``) compressed with ``encoding``, cached under ``key``
    until ``stamp`` changes (a file's mtime and size; a generated body's hash)."""
    cached = _encoded_cache.get((key, encoding))
    if cached and cached[0] == stamp:
        return cached[1]
    if data is None:
        data = path.read_bytes()
    body = dict(ENCODINGS)[encoding](data)
    _encoded_cache[(key, encoding)] = (stamp, body)
    return body


def _compressible(response) -> bool:
    return response.mimetype in COMPRESSIBLE


def _compress_file(response, path: Path):
    """The response for a file (from send_from_directory, not yet conditional) compressed if
    its type allows and the browser accepts it; then answered conditionally (ETag → 304)."""
    if not _compressible(response):
        return response.make_conditional(request, accept_ranges=True)
    response.vary.add("Accept-Encoding")
    stat = path.stat()
    encoding = _accepted_encoding() if stat.st_size >= MIN_COMPRESS_BYTES else None
    if encoding is None:
        return response.make_conditional(request, accept_ranges=True)
    body = encoded(str(path), (stat.st_mtime_ns, stat.st_size), None, encoding, path)
    response.close()  # the file handle of the identity body
    etag, _weak = response.get_etag()
    response.direct_passthrough = False
    response.set_data(body)
    response.headers["Content-Encoding"] = encoding
    response.set_etag(f"{etag}-{encoding}")
    return response.make_conditional(request)


def _send(filename: str):
    """A file of pwa/ (a page or a static file), compressed when it helps."""
    response = send_from_directory(PWA_DIR, filename, conditional=False)
    return _compress_file(response, PWA_DIR / filename)


def _page(name: str):
    filename = PAGES[name]
    if not (PWA_DIR / filename).is_file():
        raise NotFound()
    response = _send(filename)
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


@pages.get("/following")
def following():
    return _page("following")


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
    response = send_from_directory(PWA_DIR, "manifest.webmanifest", conditional=False)
    response.mimetype = "application/manifest+json"
    return _compress_file(response, PWA_DIR / "manifest.webmanifest")


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


# The files a page names in <link href> / <script src>, and the modules a script imports.
_PAGE_REF = re.compile(r"<(?:link|script)\b[^>]*?\b(?:href|src)=\"(/[^\"?#]*)\"", re.I)
_IMPORT = re.compile(r"""\b(?:from|import)\s*\(?\s*["']([^"']+\.m?js)["']""")
# The pages a participant's first visit precaches: the mob page and the discover page.
CORE_PAGES = ("index.html", "m.html")


def _url(file: str) -> str:
    return "/" if file == "index.html" else f"/{file}"


def page_files(page: str) -> list[str]:
    """What ``page`` (a file of pwa/) loads, relative to pwa/: itself, its styles, scripts
    and icons, and every module those scripts import (recursively), in order."""
    found: list[str] = []

    def add(file: str) -> None:
        if file in found or not (PWA_DIR / file).is_file():
            return
        found.append(file)
        if file.endswith((".js", ".mjs")):
            text = (PWA_DIR / file).read_text(encoding="utf-8", errors="replace")
            base = "/" + file.rsplit("/", 1)[0] + "/" if "/" in file else "/"
            for match in _IMPORT.finditer(text):
                spec = match.group(1)
                if spec.startswith("/"):
                    add(spec.lstrip("/"))
                elif spec.startswith("."):
                    add(_resolve(base, spec))

    add(page)
    html = (PWA_DIR / page).read_text(encoding="utf-8")
    for ref in _PAGE_REF.findall(html):
        add(ref.lstrip("/"))
    return found


def _resolve(base: str, spec: str) -> str:
    parts = [p for p in base.split("/") if p]
    for piece in spec.split("/"):
        if piece == "..":
            parts = parts[:-1]
        elif piece not in (".", ""):
            parts.append(piece)
    return "/".join(parts)


def shell_roles() -> dict:
    """The shell by page role: ``{"core": [URLs], "pages": {page URL: [URLs]}}``.

    ``core`` is what a participant's first visit precaches (the mob page and the discover
    page with what they load, and the manifest); ``pages`` lists, per page, what it loads,
    for the service worker to cache when that page is opened (the organizer's drawing
    library only with /organize).
    """
    pages_ = {
        _url(name): [_url(f) for f in page_files(name)]
        for name in PAGES.values()
        if (PWA_DIR / name).is_file()
    }
    core: list[str] = []
    for name in CORE_PAGES:
        for url in pages_.get(_url(name), []):
            if url not in core:
                core.append(url)
    if (PWA_DIR / "manifest.webmanifest").is_file() and "/manifest.webmanifest" not in core:
        core.append("/manifest.webmanifest")
    return {"core": core, "pages": pages_}


def shell_build() -> dict:
    """``{"version": <hash of the shell files>, "shell": [URLs], "core": [URLs],
    "pages": {page URL: [URLs]}}``; recomputed on changes."""
    files = shell_files()
    stamp = tuple((f, (PWA_DIR / f).stat().st_mtime_ns) for f in files)
    with _build_lock:
        if _build_cache.get("stamp") != stamp:
            digest = hashlib.sha256()
            for name in files:
                digest.update(name.encode() + b"\0" + (PWA_DIR / name).read_bytes())
            urls = [_url(f) for f in files]
            roles = shell_roles()
            shell = set(urls)
            build = {
                "version": digest.hexdigest()[:12],
                "shell": urls,
                "core": [u for u in roles["core"] if u in shell],
                "pages": {
                    page: [u for u in deps if u in shell] for page, deps in roles["pages"].items()
                },
            }
            _build_cache.update(stamp=stamp, build=build)
        return _build_cache["build"]


@pages.get("/sw.js")
def service_worker():
    source = (PWA_DIR / "sw.js").read_text(encoding="utf-8")
    line = f"const BUILD = {json.dumps(shell_build())};"
    body = _BUILD_LINE.sub(lambda _m: line, source, count=1).encode()
    digest = hashlib.sha256(body).hexdigest()[:16]
    response = Response(body, mimetype="text/javascript")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Service-Worker-Allowed"] = "/"
    response.vary.add("Accept-Encoding")
    encoding = _accepted_encoding()
    if encoding:
        response.set_data(encoded("/sw.js", digest, body, encoding))
        response.headers["Content-Encoding"] = encoding
    response.set_etag(f"{digest}-{encoding}" if encoding else digest)
    return response.make_conditional(request)


@pages.get("/<notapi:filename>")
def static_file(filename: str):
    if filename in PAGES.values():  # the pages by file name: the service worker caches them
        return _page(next(k for k, v in PAGES.items() if v == filename))
    top = filename.split("/", 1)[0]
    if top not in STATIC_DIRS or "/." in f"/{filename}" or filename.endswith(".py"):
        raise NotFound()
    return _send(filename)
