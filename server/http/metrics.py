"""``GET /metrics`` (Prometheus) and the HTTP request counters; the metrics themselves are in
``server.infra.metrics`` (who may scrape: see its docstring)."""

from __future__ import annotations

import hmac
import ipaddress
import time

from flask import Blueprint, Response, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, values

from server.infra.errors import ApiError
from server.infra.metrics import (
    HTTP_REQUESTS,
    HTTP_SECONDS,
    DatabaseCollector,
    log,
    registry_for_scrape,
    watch_pool,
)

__all__ = ["metrics", "check_scraper"]


def _multiproc_dir() -> str:
    try:
        return current_app.config["SETTINGS"].prometheus_multiproc_dir
    except (KeyError, RuntimeError):
        return ""


metrics = Blueprint("metrics", __name__)


@metrics.record_once
def _on_register(state) -> None:
    engine = state.app.extensions.get("goodmob.engine")
    if engine is not None:
        watch_pool(engine)
    directory = state.app.config["SETTINGS"].prometheus_multiproc_dir
    if directory and values.ValueClass is values.MutexValue:
        log.warning(
            "PROMETHEUS_MULTIPROC_DIR must be in the environment before the process starts; "
            "this process's own metrics are missing from /metrics"
        )


def _loopback(address: str | None) -> bool:
    try:
        return ipaddress.ip_address(address or "").is_loopback
    except ValueError:
        return False


def check_scraper() -> None:
    """Refuse a scrape this client may not make (see ``server.infra.metrics``)."""
    settings = current_app.config["SETTINGS"]
    secret = settings.metrics_token
    if secret:
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), secret.encode()
        ):
            return
        code = "token_invalid" if header else "auth_required"
        raise ApiError(401, code, "Send 'Authorization: Bearer <METRICS_TOKEN>' to scrape.")
    if settings.env == "production" or not _loopback(request.remote_addr):
        raise ApiError(404, "not_found", "There is nothing at this address.")


@metrics.get("/metrics")
def scrape():
    check_scraper()
    body = generate_latest(registry_for_scrape(_multiproc_dir()))
    database = CollectorRegistry(auto_describe=False)
    database.register(DatabaseCollector(current_app.extensions["goodmob.engine"]))
    body += generate_latest(database)
    return Response(body, mimetype=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})


@metrics.before_app_request
def _http_started():
    g.metrics_started = time.perf_counter()


@metrics.after_app_request
def _http_done(response):
    started = g.pop("metrics_started", None)
    if started is not None:
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        HTTP_REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        HTTP_SECONDS.labels(route).observe(time.perf_counter() - started)
    return response
