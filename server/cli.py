"""Admin commands: ``python -m server <command>`` (``migrate`` lives in ``server.__main__``).

    create-organizer --email E --name N [--password P]   an organizer account (the password
                                                         is asked for, or read from stdin)
    list-mobs [--status S ...] [--json]                  mobs, their phase, GO time, counts
    purge [--dry-run]                                    delete expired personal data
    export MOB_ID --out DIR                              GeoJSON (zone, tasks, deed counts)
                                                         and CSV of deeds; no positions
    check-config [--connect]                             every setting, secrets masked

Exit status: 0 done, 1 the command failed (the message says why), 2 bad configuration or
usage. Every command reads the settings from the environment like the server does.
"""

from __future__ import annotations

import argparse
import copy
import csv
import getpass
import json
import sys
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import and_, func, or_, select, update

from config import ConfigError, Settings, load_settings

# The server's modules are imported inside the commands, so that `python -m server <command>
# --help` stays quick; there is no import circle to dodge (scripts/check_layers.py).

__all__ = ["main", "COMMANDS"]

COMMANDS = ("create-organizer", "list-mobs", "purge", "export", "check-config")


class CommandError(Exception):
    """A command could not do its work; the message is for the operator."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m server", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")

    p = sub.add_parser("create-organizer", help="create an organizer account")
    p.add_argument("--email", required=True)
    p.add_argument("--name", required=True)
    p.add_argument(
        "--password",
        help="the password (visible to other users of this machine: prefer the prompt or stdin)",
    )

    from server.infra.models import MOB_STATUSES

    p = sub.add_parser("list-mobs", help="list mobs with their phase, GO time and counts")
    p.add_argument("--status", action="append", choices=MOB_STATUSES, help="repeatable")
    p.add_argument("--json", action="store_true", help="one JSON object per mob")

    p = sub.add_parser("purge", help="delete personal data whose time is up")
    p.add_argument("--dry-run", action="store_true", help="count only; change nothing")

    p = sub.add_parser("export", help="write a mob's GeoJSON and deeds CSV")
    p.add_argument("mob_id")
    p.add_argument("--out", required=True, type=Path, help="directory (created if missing)")

    p = sub.add_parser("check-config", help="validate and print every setting")
    p.add_argument(
        "--connect", action="store_true", help="also check the database, migrations and Redis"
    )
    return parser


def main(argv: list[str] | None = None, environ: dict | None = None) -> int:
    """Run one admin command; ``argv`` starts with the command name. Returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(environ)
    except ConfigError as exc:
        print(f"Configuration error: {exc}", file=sys.stderr)
        return 2
    if args.command == "check-config":
        return check_config(settings, args.connect)
    from server.infra.db import make_engine, make_session_factory

    engine = make_engine(settings)
    try:
        _require_schema(engine, settings)
        with _bare_app(settings).app_context(), make_session_factory(engine)() as session:
            handler = {
                "create-organizer": create_organizer,
                "list-mobs": list_mobs,
                "purge": purge,
                "export": export,
            }[args.command]
            return handler(session, settings, args)
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()


def _bare_app(settings: Settings):
    """An app context for domain code that asks for one (``current_app``): no routes, no
    sockets, and no position buffer (buffers live in the server processes)."""
    from flask import Flask

    app = Flask("goodmob_cli")
    app.config.update(SETTINGS=settings, SECRET_KEY=settings.secret_key)
    return app


def _require_schema(engine, settings: Settings) -> None:
    from server.infra.migrate import current_revision, head_revision, upgrade

    head = head_revision()
    if current_revision(engine) == head:
        return
    if settings.auto_migrate:
        upgrade(engine)
        return
    raise CommandError(
        f"the database is at revision {current_revision(engine)}, not {head}: "
        "run `python -m server migrate` first"
    )


# --- create-organizer ----------------------------------------------------------------------


def _read_password(given: str | None) -> str:
    if given is not None:
        return given
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Password again: ") != first:
            raise CommandError("the two passwords differ")
        return first
    line = sys.stdin.readline()
    if not line:
        raise CommandError("no password: pass --password, type it, or send it on stdin")
    return line.rstrip("\r\n")


def create_organizer(session, settings: Settings, args) -> int:
    from server.domain.accounts import sign_up
    from server.infra.errors import ApiError
    from server.infra.models import Organizer

    name = args.name.strip()
    if not 1 <= len(name) <= 80:
        raise CommandError("--name must have 1 to 80 characters")
    password = _read_password(args.password)
    try:
        created = sign_up(session, args.email, password, name)
    except ApiError as exc:
        raise CommandError(exc.message) from None
    if not created:  # the operator may know; the HTTP sign-up tells no one (SECURITY.md §9)
        session.rollback()
        raise CommandError("An organizer with this email already exists.")
    session.commit()
    email = args.email.strip().lower()
    organizer = session.scalar(select(Organizer).where(Organizer.email == email))
    print(f"Organizer {organizer.id} created: {organizer.email} ({organizer.name}).")
    return 0


# --- list-mobs -----------------------------------------------------------------------------


def _mob_rows(session, statuses: list[str] | None) -> list[dict]:
    from server.infra.models import COUNTED_DEED_STATUSES, Deed, Mob, Participant

    joined = (
        select(func.count()).where(Participant.mob_pk == Mob.pk).correlate(Mob).scalar_subquery()
    )
    done = (
        select(func.count())
        .where(Deed.mob_pk == Mob.pk, Deed.status.in_(COUNTED_DEED_STATUSES))
        .correlate(Mob)
        .scalar_subquery()
    )
    flagged = (
        select(func.count())
        .where(Deed.mob_pk == Mob.pk, Deed.status == "flagged")
        .correlate(Mob)
        .scalar_subquery()
    )
    query = select(Mob, joined, done, flagged).order_by(Mob.go_at, Mob.pk)
    if statuses:
        query = query.where(Mob.status.in_(statuses))
    return [
        {
            "id": mob.id,
            "title": mob.title,
            "phase": mob.status,
            "rehearsal": mob.rehearsal,
            "go_at_utc": mob.go_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
            "go_at_local": mob.go_at.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z"),
            "participants": n_joined,
            "deeds": n_done,
            "flagged": n_flagged,
        }
        for mob, n_joined, n_done, n_flagged in session.execute(query)
    ]


def list_mobs(session, settings: Settings, args) -> int:
    rows = _mob_rows(session, args.status)
    if args.json:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
        return 0
    if not rows:
        print("No mobs.")
        return 0
    columns = [
        ("ID", "id"), ("TITLE", "title"), ("PHASE", "phase"), ("GO (LOCAL)", "go_at_local"),
        ("GO (UTC)", "go_at_utc"), ("PEOPLE", "participants"), ("DEEDS", "deeds"),
        ("FLAGGED", "flagged"),
    ]  # fmt: skip
    cells = [[h for h, _ in columns]]
    for row in rows:
        title = row["title"] if len(row["title"]) <= 32 else row["title"][:31] + "…"
        phase = row["phase"] + (" (rehearsal)" if row["rehearsal"] else "")
        cells.append([str(row[k]) for _, k in columns])
        cells[-1][1], cells[-1][2] = title, phase
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    for r in cells:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return 0


# --- purge ---------------------------------------------------------------------------------


def _ended(now: datetime, settings: Settings):
    """Mobs whose positions are due for deletion (as ``scheduler.purge_ended`` selects them)."""
    from server.infra.models import Mob

    grace = timedelta(seconds=settings.deed_grace_s)
    return and_(
        Mob.positions_purged_at.is_(None),
        or_(Mob.status == "cancelled", and_(Mob.status == "finished", Mob.end_at <= now - grace)),
    )


def purge(session, settings: Settings, args) -> int:
    """Positions of mobs that ended or were cancelled, and any fix older than a participant
    token can live (the phone can no longer report, so the fix is of no use)."""
    from server.domain.scheduler import purge_ended
    from server.infra.models import Mob, Participant, utcnow

    now = utcnow()
    stale_before = now - timedelta(seconds=settings.participant_token_max_age_s)
    has_fix = or_(Participant.lat.is_not(None), Participant.lon.is_not(None))
    ended_pks = select(Mob.pk).where(_ended(now, settings))
    n_mobs = session.scalar(select(func.count()).where(_ended(now, settings)))
    n_fixes = session.scalar(select(func.count()).where(Participant.mob_pk.in_(ended_pks), has_fix))
    stale = and_(has_fix, Participant.fix_at < stale_before, Participant.mob_pk.not_in(ended_pks))
    n_stale = session.scalar(select(func.count()).where(stale))
    age_h = settings.participant_token_max_age_s / 3600
    if args.dry_run:
        session.rollback()
        print(
            f"Would delete the positions of {n_mobs} ended or cancelled mobs "
            f"({n_fixes} participants' fixes) and {n_stale} fixes older than {age_h:g} h. "
            "Nothing changed (--dry-run)."
        )
        return 0
    n_stale = session.execute(
        update(Participant)
        .where(stale)
        .values(lat=None, lon=None, accuracy_m=None, fix_at=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.commit()
    purged = purge_ended(session, now, settings)
    print(
        f"Deleted the positions of {purged} ended or cancelled mobs ({n_fixes} participants' "
        f"fixes) and {n_stale} fixes older than {age_h:g} h."
    )
    return 0


# --- export --------------------------------------------------------------------------------

DEED_COLUMNS = (
    "id", "deed_id", "participant", "task", "task_label", "status", "reason", "distance_m",
    "accuracy_m", "created_at", "reviewed_at",
)  # fmt: skip


def _iso(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds") if value else ""


def export(session, settings: Settings, args) -> int:
    """``DIR/<mob>.geojson``: the zone and the tasks with their deed counts;
    ``DIR/<mob>-deeds.csv``: one row per deed, without any position."""
    from server.domain import mobs, participants
    from server.domain.views import tasks_feature_collection
    from server.infra.models import Deed, Mob, Task

    mob = session.scalar(select(Mob).where(Mob.id == args.mob_id))
    if mob is None:
        raise CommandError(f"no mob {args.mob_id!r} (see `python -m server list-mobs`)")
    tasks = copy.deepcopy(tasks_feature_collection(session, mob))  # shared: never changed
    flagged = dict(
        session.execute(
            select(Deed.task_id, func.count())
            .where(Deed.mob_pk == mob.pk, Deed.status == "flagged")
            .group_by(Deed.task_id)
        ).all()
    )
    for feature in tasks["features"]:
        feature["properties"]["deeds_flagged"] = flagged.get(feature["id"], 0)
    zone = {
        "type": "Feature",
        "id": "zone",
        "geometry": mobs.zone_geojson(mob),
        "properties": {
            "kind": "zone", "mob": mob.id, "title": mob.title, "action": mob.action,
            "status": mob.status, "rehearsal": mob.rehearsal, "go_at": _iso(mob.go_at),
            "end_at": _iso(mob.end_at), "duration_s": mob.duration_s,
            **participants.counters(session, mob),
        },
    }  # fmt: skip
    collection = {"type": "FeatureCollection", "features": [zone, *tasks["features"]]}

    out: Path = args.out
    try:
        out.mkdir(parents=True, exist_ok=True)
        geojson_path = out / f"{mob.id}.geojson"
        geojson_path.write_text(json.dumps(collection, ensure_ascii=False, indent=1) + "\n")
        csv_path = out / f"{mob.id}-deeds.csv"
        labels = dict(
            session.execute(select(Task.id, Task.label).where(Task.mob_pk == mob.pk)).all()
        )
        ordinal: dict[int, int] = {}  # participants numbered 1.. in order of their first deed
        with csv_path.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(DEED_COLUMNS)
            for d in session.scalars(select(Deed).where(Deed.mob_pk == mob.pk).order_by(Deed.id)):
                number = ordinal.setdefault(d.participant_id, len(ordinal) + 1)
                writer.writerow(
                    [d.id, d.deed_id, number, d.task_id or "", labels.get(d.task_id, ""),
                     d.status, d.reason or "", d.distance_m if d.distance_m is not None else "",
                     d.accuracy_m if d.accuracy_m is not None else "", _iso(d.created_at),
                     _iso(d.reviewed_at)]
                )  # fmt: skip
    except OSError as exc:
        raise CommandError(f"cannot write to {out}: {exc.strerror or exc}") from None
    print(f"Wrote {geojson_path} ({len(tasks['features'])} tasks) and {csv_path}.")
    return 0


# --- check-config --------------------------------------------------------------------------

_SECRET_FIELDS = ("secret_key",)
_URL_FIELDS = ("database_url", "redis_url")


def _variable(name: str) -> str:
    return "GOODMOB_ENV" if name == "env" else name.upper()


def masked(name: str, value) -> str:
    """A setting's value fit to print: secrets hidden, passwords in URLs hidden.

    >>> masked("database_url", "postgresql://goodmob:s3cret@db/goodmob")
    'postgresql://goodmob:****@db/goodmob'
    >>> masked("secret_key", "x" * 40)
    '**** (40 characters)'
    """
    if name in _SECRET_FIELDS:
        return f"**** ({len(value)} characters)" if value else "(empty)"
    if name in _URL_FIELDS and value:
        from urllib.parse import urlsplit

        parts = urlsplit(value)
        if parts.password:
            netloc = parts.netloc.replace(f":{parts.password}@", ":****@", 1)
            return parts._replace(netloc=netloc).geturl()
    return repr(value) if isinstance(value, str) else str(value)


def check_config(settings: Settings, connect: bool) -> int:
    width = max(len(_variable(f.name)) for f in fields(Settings))
    for f in fields(Settings):
        print(f"{_variable(f.name).ljust(width)}  {masked(f.name, getattr(settings, f.name))}")
    print(f"\nConfiguration is valid ({settings.env}).")
    if not connect:
        return 0
    from server.domain.readiness import run_checks
    from server.infra.db import make_engine

    engine = make_engine(settings)
    try:
        checks = run_checks(settings, engine)
    finally:
        engine.dispose()
    checks.pop("scheduler", None)
    checks.pop("subscription", None)  # a serving process's own (see /readyz)
    for name, check in checks.items():
        print(f"{name:<10}  {'ok  ' if check['ok'] else 'FAIL'}  {check['detail']}")
    return 0 if all(c["ok"] for c in checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
