"""Schemathesis against the served OpenAPI document of the in-process app (WSGI).

Every documented operation is called with generated data, valid and invalid (schemathesis'
positive and negative modes), as an organizer who owns a published mob, so paths and bodies
reach real code rather than only 401s and 404s. Checks (schemathesis' defaults): no 5xx,
status codes, content types, headers and bodies as documented, invalid data rejected, valid
data accepted. The budget is bounded: a few derandomized examples per operation and mode, on
each database backend.
"""

from __future__ import annotations

import re

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from server.http.routes_doc import ROUTES
from tests.factories import auth, make_organizer, make_published_mob

# Destructive operations last, so the others meet a live, published mob.
_LAST = ("delete", "cancel", "/tasks/generate")
OPERATIONS = sorted(
    (tuple(key.split(" ", 1)) for key in ROUTES),  # every documented operation
    key=lambda op: any(word in f"{op[0].lower()} {op[1]}" for word in _LAST),
)
# A well-formed request may still break a domain rule (a zone that self-intersects, a GO in
# the past, a task outside the zone): 422 with its code, or 410 for trimmed events. Every
# other refusal of schema-valid data (a 400) is a fault of the document or of the server.
CONFIG = schemathesis.Config.from_dict(
    {
        "checks": {
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "401", "403", "404", "409", "410", "422"]
            }
        }
    }
)
BUDGET = settings(
    max_examples=5,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
_ROW_ID = re.compile(r"^[0-9]{1,18}$")  # <int:...> in server/app.py
_PUBLIC_ID = re.compile(r"^[a-z0-9]{8}$")
_PATH_PARAMETERS = {"mob_id": _PUBLIC_ID, "campaign_id": _PUBLIC_ID, "task_id": _ROW_ID,
                    "deed_id": _ROW_ID, "follow_id": _ROW_ID, "pledge_id": _ROW_ID}  # fmt: skip


def _path_conforms(case) -> bool:
    """Are the path parameters as documented? Invalid ones may match no route at all (the
    PWA's catch-all GET route then answers 405), so only a refusal is expected of them."""
    return all(
        _PATH_PARAMETERS[name].match(str(value))
        for name, value in (case.path_parameters or {}).items()
    )


def _check_operation(schema, method: str, path: str, token: str, mob_id: str) -> None:
    operation = schema[path][method]
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )

    @BUDGET
    @given(case=cases)
    def run(case):
        positive = case.meta is not None and case.meta.generation.mode == GenerationMode.POSITIVE
        if positive and "mob_id" in (case.path_parameters or {}):
            case.path_parameters["mob_id"] = mob_id
        if not _path_conforms(case):
            response = case.call(headers=auth(token))
            assert 400 <= response.status_code < 500, (response.status_code, case)
            return
        case.call_and_validate(headers=auth(token))

    run()


def test_every_operation_conforms_to_the_document(app, client):
    token = make_organizer(client)
    mob = make_published_mob(client, token, spacing_m=40)
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app, config=CONFIG)
    failures = []
    for method, path in OPERATIONS:
        try:
            _check_operation(schema, method, path, token, mob["id"])
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{method} {path}:\n{exc}")
    assert not failures, "\n\n".join(failures)
