"""Admin commands (server/cli.py), on both databases, through ``cli.main`` and a real process."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import uuid
from dataclasses import fields
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from config import REPO_ROOT as ROOT
from config import Settings
from server import cli
from server.domain import participants
from server.infra.models import Mob, Participant, Task, utcnow
from support.ports import free_port
from tests.factories import make_organizer, make_published_mob

# A participant's fix inside the park (distinctive digits, so they can be searched for).
FIX = {"lat": 52.53187, "lon": 13.40021, "accuracy_m": 8, "at": 0}


@pytest.fixture()
def env(settings, db):
    """The environment a server on the test database would have."""
    return {
        "GOODMOB_ENV": "test",
        "DATABASE_URL": settings.database_url,
        "SECRET_KEY": settings.secret_key,
    }


def run(env, *argv, stdin: str | None = None, monkeypatch=None) -> int:
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    return cli.main(list(argv), env)


def _participant(client, db, settings, mob_id: str, fix=FIX) -> Participant:
    r = client.post(f"/api/mobs/{mob_id}/participants", json={})
    assert r.status_code == 201, r.get_json()
    participant = db.get(Participant, r.get_json()["participant"]["id"])
    with client.application.app_context():
        ack = participants.report_location(db, participant, participant.mob, dict(fix), settings)
        db.commit()
    assert ack["zone"] == "inside" and ack["task"], ack
    return participant


def _deed(app, db, settings, participant: Participant, far: bool = False) -> dict:
    """A deed at the participant's task (or 300 m off it: flagged), during the action."""
    mob = participant.mob
    task = participants.task_json(db.get(Task, participant.task_id))
    body = {"deed_id": str(uuid.uuid4()), "task": task["id"], "accuracy_m": 5,
            "lat": task["lat"] + (0.0027 if far else 0.00004), "lon": task["lon"]}  # fmt: skip
    with app.app_context():
        ack = participants.confirm_deed(
            db, participant, mob, body, settings, now=mob.go_at + timedelta(seconds=1)
        )
        db.commit()
    assert ack["status"] == ("flagged" if far else "accepted"), ack
    return body


# --- create-organizer ----------------------------------------------------------------------


def test_create_organizer_reads_the_password_from_stdin_and_can_log_in(
    env, client, monkeypatch, capsys
):
    code = run(env, "create-organizer", "--email", "Ops@Example.org", "--name", "Ops",
               stdin="correct horse battery\n", monkeypatch=monkeypatch)  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "ops@example.org" in out
    assert "correct horse" not in out
    r = client.post(
        "/api/sessions", json={"email": "ops@example.org", "password": "correct horse battery"}
    )
    assert r.status_code == 201 and r.get_json()["token"], r.get_json()


def test_create_organizer_refuses_a_taken_email_and_a_short_password(env, monkeypatch, capsys):
    args = ("create-organizer", "--email", "ops@example.org", "--name", "Ops")
    assert run(env, *args, "--password", "correct horse") == 0
    assert run(env, *args, "--password", "correct horse") == 1
    assert "already exists" in capsys.readouterr().err
    other = ("create-organizer", "--email", "b@example.org", "--name", "B")
    assert run(env, *other, stdin="short\n", monkeypatch=monkeypatch) == 1
    assert "at least 8 characters" in capsys.readouterr().err
    assert run(env, *other, stdin="", monkeypatch=monkeypatch) == 1
    assert "no password" in capsys.readouterr().err


# --- list-mobs -----------------------------------------------------------------------------


def test_list_mobs_shows_phase_go_time_and_counts(env, client, db, settings, capsys):
    token = make_organizer(client)
    published = make_published_mob(client, token, spacing_m=40, title="Sweep the park")
    first = _participant(client, db, settings, published["id"])
    _participant(client, db, settings, published["id"])
    _deed(client.application, db, settings, first)

    assert run(env, "list-mobs") == 0
    out = capsys.readouterr().out
    header, row = out.splitlines()
    assert header.split()[:3] == ["ID", "TITLE", "PHASE"]
    assert published["id"] in row and "Sweep the park" in row and "published" in row
    go_utc = published["go_at"][:19].replace("T", " ")
    assert f"{go_utc} UTC" in row
    assert row.split()[-3:] == ["2", "1", "0"]  # people, deeds, flagged

    assert run(env, "list-mobs", "--json") == 0
    [mob] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert mob["id"] == published["id"] and mob["phase"] == "published"
    assert (mob["participants"], mob["deeds"], mob["flagged"]) == (2, 1, 0)
    assert mob["go_at_local"]

    assert run(env, "list-mobs", "--status", "draft") == 0
    assert capsys.readouterr().out.strip() == "No mobs."
    with pytest.raises(SystemExit):
        run(env, "list-mobs", "--status", "sleeping")


# --- purge ---------------------------------------------------------------------------------


def _positions(db, mob_id: str) -> list:
    db.expire_all()
    return db.execute(
        select(Participant.lat, Participant.lon)
        .join(Mob, Mob.pk == Participant.mob_pk)
        .where(Mob.id == mob_id)
    ).all()


def test_purge_deletes_positions_of_ended_mobs_and_stale_fixes(env, client, db, settings, capsys):
    token = make_organizer(client)
    ended, cancelled, live, stale = (
        make_published_mob(client, token, spacing_m=40)["id"] for _ in range(4)
    )
    for mob_id in (ended, cancelled, live, stale):
        _participant(client, db, settings, mob_id)
    now = utcnow()
    long_ago = now - timedelta(hours=2)
    db.execute(update(Mob).where(Mob.id == ended).values(
        status="finished", go_at=long_ago, end_at=long_ago + timedelta(minutes=1)))  # fmt: skip
    db.execute(update(Mob).where(Mob.id == cancelled).values(status="cancelled"))
    db.execute(update(Mob).where(Mob.id == live).values(status="action"))
    old_fix = now - timedelta(seconds=settings.participant_token_max_age_s + 60)
    stale_pk = db.scalar(select(Mob.pk).where(Mob.id == stale))
    db.execute(update(Participant).where(Participant.mob_pk == stale_pk).values(fix_at=old_fix))
    db.commit()

    assert run(env, "purge", "--dry-run") == 0
    out = capsys.readouterr().out
    assert "2 ended or cancelled mobs (2 participants' fixes) and 1 fixes older" in out
    assert "Nothing changed" in out
    for mob_id in (ended, cancelled, live, stale):
        assert _positions(db, mob_id) == [(FIX["lat"], FIX["lon"])]

    assert run(env, "purge") == 0
    assert "Deleted the positions of 2 ended or cancelled mobs" in capsys.readouterr().out
    for mob_id in (ended, cancelled, stale):
        assert _positions(db, mob_id) == [(None, None)], mob_id
    assert _positions(db, live) == [(FIX["lat"], FIX["lon"])]  # a live mob keeps them
    assert run(env, "purge") == 0  # nothing left to do
    assert "of 0 ended or cancelled mobs (0 participants' fixes) and 0 fixes" in (
        capsys.readouterr().out
    )


# --- export --------------------------------------------------------------------------------


def test_export_writes_geojson_with_deed_counts_and_a_csv_without_positions(
    env, client, db, settings, tmp_path, capsys
):
    token = make_organizer(client)
    mob = make_published_mob(client, token, spacing_m=40)
    first = _participant(client, db, settings, mob["id"])
    second = _participant(client, db, settings, mob["id"])
    done = _deed(client.application, db, settings, first)
    doubtful = _deed(client.application, db, settings, second, far=True)

    out_dir = tmp_path / "export"
    assert run(env, "export", mob["id"], "--out", str(out_dir)) == 0
    assert str(out_dir) in capsys.readouterr().out
    collection = json.loads((out_dir / f"{mob['id']}.geojson").read_text())
    assert collection["type"] == "FeatureCollection"
    zone, *tasks = collection["features"]
    assert zone["geometry"]["type"] == "Polygon" and zone["properties"]["mob"] == mob["id"]
    assert zone["properties"]["deeds_done"] == 1 and zone["properties"]["joined"] == 2
    assert len(tasks) == len(client.get(f"/api/mobs/{mob['id']}/tasks").get_json()["features"])
    by_id = {t["id"]: t["properties"] for t in tasks}
    assert by_id[done["task"]]["deeds_done"] == 1
    assert by_id[doubtful["task"]]["deeds_flagged"] == 1
    assert sum(p["deeds_done"] for p in by_id.values()) == 1
    assert all(t["geometry"]["type"] == "Point" for t in tasks)

    text = (out_dir / f"{mob['id']}-deeds.csv").read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["status"] for r in rows] == ["accepted", "flagged"]
    assert [r["participant"] for r in rows] == ["1", "2"]
    assert rows[1]["reason"] == "far_from_task"
    assert not {"lat", "lon", "latitude", "longitude"} & set(rows[0])
    everything = text + json.dumps(collection)
    for secret in (str(FIX["lat"]), str(FIX["lon"]), str(doubtful["lat"]), str(done["lat"])):
        assert secret not in everything  # no participant's position


def test_export_of_an_unknown_mob_fails_with_a_message(env, tmp_path, capsys):
    assert run(env, "export", "nope", "--out", str(tmp_path)) == 1
    assert "no mob 'nope'" in capsys.readouterr().err


# --- check-config --------------------------------------------------------------------------


def test_check_config_prints_every_setting_with_secrets_masked(capsys):
    env = {
        "GOODMOB_ENV": "production",
        "SECRET_KEY": "s" * 40,
        "DATABASE_URL": "postgresql://goodmob:hunter2hunter2@db.internal/goodmob",
        "REDIS_URL": "redis://:redispass@cache:6379/0",
    }
    assert cli.main(["check-config"], env) == 0
    out = capsys.readouterr().out
    for f in fields(Settings):
        assert ("GOODMOB_ENV" if f.name == "env" else f.name.upper()) in out
    assert "s" * 40 not in out and "**** (40 characters)" in out
    assert "hunter2" not in out and "postgresql://goodmob:****@db.internal/goodmob" in out
    assert "redispass" not in out
    assert "Configuration is valid (production)" in out


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PORT", "eighty"),
        ("LOG_FORMAT", "yaml"),
        ("LOG_LEVEL", "LOUD"),
        ("DATABASE_URL", "mysql://x"),
        ("READYZ_TIMEOUT_S", "0"),
        ("PROMETHEUS_MULTIPROC_DIR", "/no/such/dir"),
    ],
)
def test_check_config_names_the_bad_variable(variable, value, capsys):
    assert cli.main(["check-config"], {"GOODMOB_ENV": "test", variable: value}) == 2
    err = capsys.readouterr().err
    assert err.startswith("Configuration error:") and variable in err


def test_check_config_connect_checks_the_database(env, settings, capsys):
    assert cli.main(["check-config", "--connect"], env) == 0
    assert "database    ok" in capsys.readouterr().out
    closed = f"postgresql://postgres@127.0.0.1:{free_port()}/goodmob"
    assert cli.main(["check-config", "--connect"], {**env, "DATABASE_URL": closed}) == 1
    assert "database    FAIL" in capsys.readouterr().out


def test_commands_run_as_python_dash_m_server(env):
    """The real entry point: ``python -m server <command>`` in a process of its own."""

    def server(*argv, extra=None):
        return subprocess.run(
            [sys.executable, "-m", "server", *argv],
            cwd=ROOT,
            env={"PATH": "/usr/bin:/bin", **env, **(extra or {})},
            capture_output=True,
            text=True,
            timeout=60,
        )

    done = server("list-mobs")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "No mobs."
    bad = server("check-config", extra={"WORKERS": "two"})
    assert bad.returncode == 2 and "WORKERS" in bad.stderr
