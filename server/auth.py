"""Organizer accounts: argon2 password hashes and signed bearer tokens."""

from __future__ import annotations

import re
from functools import wraps

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app, g, request
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.errors import ApiError
from server.models import Organizer

__all__ = [
    "sign_up",
    "log_in",
    "issue_token",
    "organizer_from_token",
    "require_organizer",
    "optional_organizer",
]

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not a real password, only for constant-time misses")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
TOKEN_SALT = "goodmob.organizer.v1"
PASSWORD_MIN_LEN = 8


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=TOKEN_SALT)


def issue_token(organizer: Organizer) -> str:
    return _serializer().dumps({"o": organizer.id})


def sign_up(session: Session, email: str, password: str, name: str) -> Organizer:
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
    if session.scalar(select(func.count()).where(Organizer.email == email)):
        raise ApiError(409, "email_taken", "An organizer with this email already exists.")
    organizer = Organizer(email=email, name=name, password_hash=_hasher.hash(password))
    session.add(organizer)
    try:
        session.flush()
    except IntegrityError:  # a concurrent sign-up with the same email won the race
        session.rollback()
        raise ApiError(409, "email_taken", "An organizer with this email already exists.") from None
    return organizer


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
    max_age = current_app.config["SETTINGS"].organizer_token_max_age_s
    try:
        payload = _serializer().loads(token, max_age=max_age)
    except SignatureExpired:
        raise ApiError(401, "token_expired", "Your session has expired; log in again.") from None
    except BadSignature:
        raise ApiError(401, "token_invalid", "The bearer token is not valid.") from None
    organizer = session.get(Organizer, payload.get("o")) if isinstance(payload, dict) else None
    if organizer is None:
        raise ApiError(401, "token_invalid", "The bearer token is not valid.")
    return organizer


def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        return None
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "token_invalid", "Send the token as 'Authorization: Bearer <token>'.")
    return token.strip()


def optional_organizer(session: Session) -> Organizer | None:
    token = _bearer()
    return organizer_from_token(session, token) if token else None


def require_organizer(view):
    """Decorator: the view runs with ``g.organizer`` set, or the client gets a 401."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        from server.app import db_session

        token = _bearer()
        if token is None:
            raise ApiError(
                401, "auth_required", "Log in first: send 'Authorization: Bearer <token>'."
            )
        g.organizer = organizer_from_token(db_session(), token)
        return view(*args, **kwargs)

    return wrapper
