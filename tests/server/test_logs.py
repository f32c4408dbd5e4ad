"""Structured logs (server/infra/logs.py): JSON lines with request/event ids, and no personal data.

The main test runs a whole mob through the app (sign-up, log-in, mob, nearby search, join,
socket events, a deed, the organizer's view) with the log at DEBUG and SQL echo on, captures
what the real handler writes, and searches it for every password, token and coordinate that
went through.
"""

from __future__ import annotations

import io
import json
import logging
import uuid
from dataclasses import replace

import pytest
from itsdangerous import URLSafeTimedSerializer

from server import socketio
from server.domain import participants
from server.infra.logs import (
    REDACTED,
    ScrubFilter,
    TextFormatter,
    configure_logging,
    log_format,
    scrub,
)
from tests.factories import PARK, auth, make_organizer, make_published_mob, organizer_token
from tests.factories import future as _future

PASSWORD = "purple elephant 42"
EMAIL = "logtest-ops@example.org"
FIX = {"lat": 52.53187, "lon": 13.40021, "accuracy_m": 8, "at": 0}
SEARCH = {"lat": "52.52437", "lon": "13.41053"}

_LIBRARY_LOGGERS = (
    "sqlalchemy",
    "sqlalchemy.engine",
    "socketio.server",
    "engineio.server",
    "socketio.client",
    "engineio.client",
    "geventwebsocket.handler",
)


@pytest.fixture()
def restore_logging():
    """Undo configure_logging: root handlers and level, library loggers, warnings capture."""
    root = logging.getLogger()
    saved_root = (root.level, list(root.handlers))
    saved = {n: (logging.getLogger(n).level, list(logging.getLogger(n).handlers))
             for n in _LIBRARY_LOGGERS}  # fmt: skip
    yield
    root.handlers[:] = saved_root[1]
    root.setLevel(saved_root[0])
    for name, (level, handlers) in saved.items():
        logging.getLogger(name).setLevel(level)
        logging.getLogger(name).handlers[:] = handlers
    logging.captureWarnings(False)


@pytest.fixture()
def captured(settings, restore_logging):
    """Everything the process logs at DEBUG, as written by the production handler (JSON)."""
    stream = io.StringIO()
    configure_logging(replace(settings, log_level="DEBUG", log_format="json"), stream=stream)
    logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)  # the worst case: SQL echo
    return stream


def _lines(stream) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def _mob_flow(app, client, db) -> dict:
    """A whole mob through the app; returns every secret that passed through it."""
    org_token = make_organizer(client, email=EMAIL, name="Ops", password=PASSWORD)
    r = client.post("/api/sessions", json={"email": EMAIL, "password": PASSWORD})
    login_token = r.get_json()["token"]
    mob = make_published_mob(client, org_token, spacing_m=40)
    r = client.get("/api/mobs", query_string=SEARCH, headers={"X-Request-ID": "nearby-1"})
    assert r.status_code == 200 and r.headers["X-Request-ID"] == "nearby-1"
    r = client.post(f"/api/mobs/{mob['id']}/participants", json={"nickname": "Kim"})
    p_token = r.get_json()["token"]
    bad = client.get("/api/organizers/me/mobs", headers=auth(p_token))  # the wrong token kind
    assert bad.status_code == 401

    sc = socketio.test_client(app, namespace="/participant", auth={"token": p_token})
    assert sc.is_connected("/participant")
    sc.emit("time_sync", {"t0": 1}, namespace="/participant", callback=True)
    sc.emit("join_mob", {"mob": mob["id"]}, namespace="/participant", callback=True)
    ack = sc.emit("report_location", FIX, namespace="/participant", callback=True)
    task = ack["task"]
    from tests.server.test_participants import start_action

    start_action(db, mob["id"])
    deed = {"deed_id": str(uuid.uuid4()), "task": task["id"], "lat": task["lat"] + 0.00004,
            "lon": task["lon"], "accuracy_m": 6}  # fmt: skip
    answer = sc.emit("confirm_deed", deed, namespace="/participant", callback=True)
    assert answer["status"] in ("accepted", "flagged"), answer
    org = socketio.test_client(app, namespace="/organizer", auth={"token": login_token})
    org.emit("watch_mob", {"mob": mob["id"]}, namespace="/organizer", callback=True)
    org.disconnect(namespace="/organizer")
    sc.disconnect(namespace="/participant")

    # Careless code: a payload and an exception message logged as they are.
    careless = logging.getLogger("goodmob.careless")
    careless.info("got %s", {"auth": {"token": p_token}, "lat": FIX["lat"], "lon": FIX["lon"]})
    careless.debug("zone %s", mob["zone"])
    try:
        raise ValueError(f"login failed for {EMAIL} with password={PASSWORD}")
    except ValueError:
        careless.exception("sign-in trouble, header was Authorization: Bearer %s", org_token)
    careless.warning("fix", extra={"fix": dict(FIX), "token": p_token, "ms": 1.5})
    return {
        "password": PASSWORD,
        "organizer token": org_token,
        "login token": login_token,
        "participant token": p_token,
        "secret key": app.config["SECRET_KEY"],
        "email": EMAIL.split("@")[0],
        "fix lat": str(FIX["lat"]),
        "fix lon": str(FIX["lon"]),
        "deed lat": str(deed["lat"]),
        "task lat": str(task["lat"]),
        "task lon": str(task["lon"]),
        "search lat": SEARCH["lat"],
        "search lon": SEARCH["lon"],
        "zone vertex": str(PARK["coordinates"][0][0][0]),
    }


def test_a_whole_mob_logs_no_coordinates_tokens_or_passwords(app, client, db, captured):
    secrets = _mob_flow(app, client, db)
    text = captured.getvalue()
    lines = _lines(captured)  # every line is one JSON object
    assert len(lines) > 50
    # The capture saw what matters: SQL, each request, each socket event, the careless lines.
    assert any(line["logger"].startswith("sqlalchemy.engine") for line in lines)
    assert any(line.get("request_id") == "nearby-1" for line in lines)
    assert any(line.get("socket_event") == "report_location" and line.get("event_id")
               for line in lines)  # fmt: skip
    assert any(line["logger"] == "goodmob.careless" and "exc" in line for line in lines)
    assert REDACTED in text
    leaks = {name: value for name, value in secrets.items() if value in text}
    assert not leaks, leaks


def test_request_ids_are_echoed_or_made(client, captured):
    r = client.get("/healthz", headers={"X-Request-ID": "probe-7"})
    assert r.headers["X-Request-ID"] == "probe-7"
    made = client.get("/api/mobs/nope").headers["X-Request-ID"]
    assert len(made) == 32
    evil = client.get("/healthz", headers={"X-Request-ID": "a b\u00e9" + "x" * 200})
    assert evil.headers["X-Request-ID"] != "a b\u00e9" + "x" * 200
    access = [line for line in _lines(captured) if line["logger"] == "goodmob.access"]
    by_id = {line["request_id"]: line for line in access}
    assert by_id[made]["status"] == 404 and by_id[made]["path"] == "/api/mobs/nope"
    assert by_id["probe-7"]["level"] == "DEBUG"  # probes are quiet
    assert all("?" not in line["path"] for line in access)


def test_socket_events_get_one_id_each(app, client, db, captured, monkeypatch):
    judge = participants._fix_problem

    def judge_and_log(*args, **kwargs):  # a line logged while each report is handled
        logging.getLogger("goodmob.test").warning("judging a fix")
        return judge(*args, **kwargs)

    monkeypatch.setattr(participants, "_fix_problem", judge_and_log)
    token = make_organizer(client, email=EMAIL, name="Ops", password=PASSWORD)
    mob = make_published_mob(client, token, spacing_m=40)
    p_token = client.post(f"/api/mobs/{mob['id']}/participants", json={}).get_json()["token"]
    sc = socketio.test_client(app, namespace="/participant", auth={"token": p_token})
    # Two reports (entering the zone, then a fix that does not count), each logging a line.
    far = {**FIX, "lat": FIX["lat"] + 0.05}
    for fix in (FIX, far):
        sc.emit("report_location", fix, namespace="/participant", callback=True)
        logging.getLogger("goodmob.test").warning("between events")  # no event id
    sc.disconnect(namespace="/participant")
    reports = [line for line in _lines(captured) if line.get("socket_event") == "report_location"]
    assert len(reports) >= 2
    assert len({line["event_id"] for line in reports}) == 2  # one per event, shared by its lines
    between = [line for line in _lines(captured) if line["msg"] == "between events"]
    assert between and all("event_id" not in line for line in between)


@pytest.mark.parametrize(
    ("raw", "gone"),
    [
        ("fix lat=52.5 lon=13.4 ok", ["52.5", "13.4"]),
        ("{'lat': 52.5, 'lon': 13.4}", ["52.5", "13.4"]),
        ('{"latitude": "52.5", "longitude": "-0.12"}', ["52.5", "-0.12"]),
        ('{"type": "Point", "coordinates": [13.4, 52.5]}', ["13.4", "52.5"]),
        ('"coordinates": [[[13.39, 52.53], [13.40, 52.54], [13.39, 52.53]]]', ["13.39", "52.5"]),
        ("SRID=4326;POLYGON((13.39 52.53, 13.4 52.54, 13.39 52.53))", ["13.39", "52.5"]),
        ("near (52.5318, 13.4002) now", ["52.5318", "13.4002"]),
        ("at 52.531871 exactly", ["52.531871"]),
        ("GET /api/mobs?lat=52.52&lon=13.41&radius_m=500", ["52.52", "13.41"]),
        ("Authorization: Bearer abc.def-ghi_jkl", ["abc.def-ghi_jkl"]),
        ("{'auth': {'token': 'plain-token-value'}}", ["plain-token-value"]),
        ('{"password": "correct horse", "name": "Ada"}', ["correct horse"]),
        ("password=hunter2&email=x", ["hunter2"]),
        ("postgresql://goodmob:s3cr3t@db/goodmob", ["s3cr3t"]),
        ("[parameters: (52.53187, 13.40021, 'x')]", ["52.53187", "13.40021"]),
        ("mail from ada.lovelace@example.org", ["ada.lovelace"]),
    ],
)
def test_scrub_removes_coordinates_tokens_and_passwords(raw, gone):
    clean = scrub(raw)
    assert REDACTED in clean
    for value in gone:
        assert value not in clean, clean


def test_scrub_finds_signed_tokens_anywhere():
    token = URLSafeTimedSerializer("k" * 32, salt="goodmob.participant.v1").dumps({"p": 1, "m": 2})
    assert token not in scrub(f"connect refused for {token}")
    assert scrub("took 12.5 ms, 3 phones, mob abc123, phase countdown") == (
        "took 12.5 ms, 3 phones, mob abc123, phase countdown"
    )


def test_sqlalchemy_parameters_are_dropped():
    record = logging.LogRecord(
        "sqlalchemy.engine.Engine", logging.INFO, __file__, 1, "[%s] %r",
        ("generated in 0.0001s", (52.5, 13.4, "secret")), None,
    )  # fmt: skip
    ScrubFilter().filter(record)
    assert "52.5" not in record.getMessage() and "generated in" in record.getMessage()


def test_text_format_in_development_json_in_production(settings, restore_logging):
    assert log_format(replace(settings, env="development", log_format="auto")) == "text"
    assert log_format(replace(settings, env="production", log_format="auto")) == "json"
    assert log_format(replace(settings, env="production", log_format="text")) == "text"
    stream = io.StringIO()
    handler = configure_logging(replace(settings, log_format="text", log_level="INFO"), stream)
    assert isinstance(handler.formatter, TextFormatter)
    logging.getLogger("goodmob.test").info("hello lat=52.5")
    line = stream.getvalue().strip()
    assert line.endswith("INFO  goodmob.test hello lat=[redacted]"), line
    # Configuring again replaces the handler instead of adding a second one.
    configure_logging(replace(settings, log_format="json"), io.StringIO())
    assert sum(getattr(h, "goodmob", False) for h in logging.getLogger().handlers) == 1


def test_a_real_server_writes_json_lines_without_personal_data(database_url, db):
    """``python -m server`` in production log format, at DEBUG, through a join and a report."""
    import threading

    import requests
    import socketio as socketio_client

    from support.server import ServerProcess

    server = ServerProcess(database_url, LOG_FORMAT="json", LOG_LEVEL="DEBUG")
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(server.proc.stdout), daemon=True)
    try:
        server.start()
        reader.start()
        api = f"{server.url}/api"
        org = auth(organizer_token(api, email=EMAIL, name="Ops", password=PASSWORD))
        body = {"title": "Logs", "action": "Go", "zone": PARK, "go_at": _future(), "duration_s": 60}
        mob = requests.post(f"{api}/mobs", json=body, headers=org, timeout=5).json()
        requests.post(f"{api}/mobs/{mob['id']}/tasks/generate", headers=org, timeout=10,
                      json={"spacing_m": 40, "kind": "litter"})  # fmt: skip
        requests.post(f"{api}/mobs/{mob['id']}/publish", headers=org, timeout=5)
        r = requests.get(
            f"{api}/mobs", params=SEARCH, headers={"X-Request-ID": "real-1"}, timeout=5
        )
        assert r.headers["X-Request-ID"] == "real-1"
        p_token = requests.post(f"{api}/mobs/{mob['id']}/participants", json={}, timeout=5).json()[
            "token"
        ]
        sio = socketio_client.Client(reconnection=False)
        sio.connect(server.url, namespaces=["/participant"], auth={"token": p_token},
                    transports=["websocket"])  # fmt: skip
        ack = sio.call("report_location", FIX, namespace="/participant", timeout=10)
        assert ack["zone"] == "inside"
        sio.disconnect()
    finally:
        server.stop()
        if reader.is_alive():
            reader.join(5)
    lines = [json.loads(line) for line in output if line.startswith("{")]
    access = [line for line in lines if line["logger"] == "goodmob.access"]
    assert any(line.get("request_id") == "real-1" for line in access), output[:20]
    text = "".join(output)
    for secret in (PASSWORD, org["Authorization"][7:], p_token, EMAIL.split("@")[0],
                   SEARCH["lat"], SEARCH["lon"], str(FIX["lat"]), str(FIX["lon"])):  # fmt: skip
        assert secret not in text
