"""Organizer accounts: argon2 password hashes and signed bearer tokens (the ``Authorization``
header is read by ``server.http.auth``; the socket namespace reads its token itself)."""

from __future__ import annotations

import re
import secrets
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from server.domain import ports
from server.infra.errors import ApiError
from server.infra.models import Organizer, OrganizerSession, utcnow

__all__ = [
    "sign_up",
    "log_in",
    "issue_token",
    "organizer_from_token",
    "organizer_of_session",
    "session_id_of",
    "log_out",
    "log_out_everywhere",
]

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not a real password, only for constant-time misses")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
TOKEN_SALT = "goodmob.organizer.v1"
PASSWORD_MIN_LEN = 8


def _config():
    """The current app's config (its SECRET_KEY and SETTINGS)."""
    return ports.host().app().config


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(_config()["SECRET_KEY"], salt=TOKEN_SALT)


def issue_token(session: Session, organizer: Organizer) -> str:
    """A new log-in: a session row (the organizer's expired ones are dropped) and its token."""
    max_age = _config()["SETTINGS"].organizer_token_max_age_s
    session.execute(
        delete(OrganizerSession).where(
            OrganizerSession.organizer_id == organizer.id,
            OrganizerSession.created_at < utcnow() - timedelta(seconds=max_age),
        )
    )
    row = OrganizerSession(id=secrets.token_urlsafe(18), organizer_id=organizer.id)
    session.add(row)
    session.flush()
    return _serializer().dumps({"o": organizer.id, "s": row.id})


def organizer_of_session(session: Session, organizer_id, session_id) -> Organizer:
    """The organizer of a live session (one query), or 401 ``token_revoked``."""
    organizer = None
    if isinstance(organizer_id, int) and isinstance(session_id, str):
        organizer = session.scalar(
            select(Organizer)
            .join(OrganizerSession, OrganizerSession.organizer_id == Organizer.id)
            .where(OrganizerSession.id == session_id, Organizer.id == organizer_id)
        )
    if organizer is None:
        raise ApiError(401, "token_revoked", "This session has ended; log in again.")
    return organizer


def session_id_of(token: str) -> str | None:
    """The session a (valid, already checked) token names."""
    payload = _serializer().loads(token)
    return payload.get("s") if isinstance(payload, dict) else None


def log_out(session: Session, token: str) -> None:
    """End the session of this token (its other sessions go on)."""
    session.execute(delete(OrganizerSession).where(OrganizerSession.id == session_id_of(token)))


def log_out_everywhere(session: Session, organizer: Organizer) -> int:
    """End every session of the organizer, this one included; how many ended."""
    result = session.execute(
        delete(OrganizerSession).where(OrganizerSession.organizer_id == organizer.id)
    )
    return result.rowcount or 0


def sign_up(session: Session, email: str, password: str, name: str) -> bool:
    """Create an organizer for ``email`` unless it has one already (issue 15 §9).

    Both cases do the same work and end alike, so neither the answer nor its timing tells
    whether the email has an account: the argon2 hash is computed either way, then one
    ``INSERT … ON CONFLICT (email) DO NOTHING`` (SQLite and PostgreSQL) that raises nothing
    for a taken email. An existing account is left as it was (password and name). Returns
    whether an account was created, for the operator's ``create-organizer`` command; the
    HTTP route ignores it and answers alike, and the client logs in next (``log_in``)."""
    email = email.strip().lower()
    if not _EMAIL.match(email):
        raise ApiError(400, "email_invalid", f"{email!r} is not an email address.")
    if len(password) < PASSWORD_MIN_LEN:
        raise ApiError(
            400,
            "password_too_short",
            f"The password must have at least {PASSWORD_MIN_LEN} characters.",
            {"field": "password"},
        )
    row = {
        "email": email,
        "name": name,
        "password_hash": _hasher.hash(password),  # always, before the database is asked
        "created_at": utcnow(),
    }
    table = Organizer.__table__
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    result = session.execute(
        insert(table).values(row).on_conflict_do_nothing(index_elements=["email"])
    )
    return result.rowcount == 1


def log_in(session: Session, email: str, password: str) -> Organizer:
    organizer = session.scalar(select(Organizer).where(Organizer.email == email.strip().lower()))
    try:
        _hasher.verify(organizer.password_hash if organizer else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        organizer = None
    if organizer is None:
        raise ApiError(401, "credentials_invalid", "The email or password is wrong.")
    return organizer


def organizer_from_token(session: Session, token: str) -> Organizer:
    max_age = _config()["SETTINGS"].organizer_token_max_age_s
    try:
        payload = _serializer().loads(token, max_age=max_age)
    except SignatureExpired:
        raise ApiError(401, "token_expired", "Your session has expired; log in again.") from None
    except BadSignature:
        raise ApiError(401, "token_invalid", "The bearer token is not valid.") from None
    if not isinstance(payload, dict):
        raise ApiError(401, "token_invalid", "The bearer token is not valid.")
    return organizer_of_session(session, payload.get("o"), payload.get("s"))
