"""The organizer's bearer token on HTTP requests: ``require_organizer`` (sets ``g.organizer``)
and ``optional_organizer``. Accounts and tokens themselves: ``server.domain.accounts``."""

from __future__ import annotations

from functools import wraps

from flask import g, request
from sqlalchemy.orm import Session

from server.domain.accounts import organizer_from_token
from server.infra.db import db_session
from server.infra.errors import ApiError
from server.infra.models import Organizer

__all__ = ["bearer_token", "require_organizer", "optional_organizer"]


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        return None
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "token_invalid", "Send the token as 'Authorization: Bearer <token>'.")
    return token.strip()


def optional_organizer(session: Session) -> Organizer | None:
    token = bearer_token()
    return organizer_from_token(session, token) if token else None


def require_organizer(view):
    """Decorator: the view runs with ``g.organizer`` set, or the client gets a 401."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        token = bearer_token()
        if token is None:
            raise ApiError(
                401, "auth_required", "Log in first: send 'Authorization: Bearer <token>'."
            )
        g.organizer = organizer_from_token(db_session(), token)
        g.organizer_token = token
        return view(*args, **kwargs)

    return wrapper
