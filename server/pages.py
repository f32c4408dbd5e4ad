"""Serves the PWA's files from pwa/ (the app shell, its modules and the npm vendor files)."""

from __future__ import annotations

from flask import Blueprint, jsonify, send_from_directory

from config import REPO_ROOT

__all__ = ["pages"]

PWA_DIR = REPO_ROOT / "pwa"

pages = Blueprint("pages", __name__)


@pages.get("/")
def index():
    return send_from_directory(PWA_DIR, "index.html")


@pages.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@pages.get("/<path:filename>")
def static_file(filename: str):
    if filename.startswith(("api/", "node_modules/")):
        from werkzeug.exceptions import NotFound

        raise NotFound()
    return send_from_directory(PWA_DIR, filename)
