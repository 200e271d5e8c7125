"""Schemathesis against the app's own OpenAPI schema: no 5xx, responses as documented."""

from __future__ import annotations

import json

import pytest
import schemathesis
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.main import _routers, create_app
from app.models import Role
from tests.factories import auth, make_tasks, make_user

EXAMPLES = 12  # per operation and role: keeps the whole module around a minute
# The core domains are held to every status code being documented; for the other domains the
# suite checks no-5xx and schema conformance, and status-code gaps are reported to their owners.
STRICT_MODULES = ("app.labeling.", "app.users.", "app.prompts.", "app.ops.", "app.auth.")
LABELER_TAGS = {"labeling"}

# Bugs this test finds go here with the failing input while they are being fixed (the case is
# then marked xfail); every bug it has found so far is fixed, so the list is empty.
KNOWN_BUGS: dict[tuple[str, str], str] = {}

app = create_app()
OWNER = {
    (method, route.path): route.endpoint.__module__
    for router in _routers()
    for route in router.routes
    if isinstance(route, APIRoute)
    for method in route.methods
}
schema = schemathesis.openapi.from_asgi("/openapi.json", app)
schema.config.generation.update(max_examples=EXAMPLES)
schema.config.phases.update(phases=["examples", "fuzzing"])
# /v1 serving loads a policy model on demand (503 until one is active): covered by its own tests
schema = schema.exclude(tag="serving")


@schemathesis.serializer("application/x-ndjson", "text/csv")
def _text(ctx: object, value: object) -> bytes:
    """Import bodies are documented as plain strings."""
    return value.encode() if isinstance(value, str) else json.dumps(value).encode()


@pytest.fixture
def tokens() -> dict[Role, str]:
    """An admin and a labeler, plus a few tasks (one leased) so ids in the schema can exist."""
    made = {Role.admin: make_user("fuzz-admin", Role.admin)}
    made[Role.labeler] = make_user("fuzz-labeler", Role.labeler)
    make_tasks(3, k=2, required=2)
    return made


# the fixture runs once per operation on purpose: its rows are what the examples poke at
@schema.parametrize()
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_api_fuzz(case: schemathesis.Case, tokens: dict[Role, str]) -> None:
    key = (case.operation.method.upper(), case.operation.path)
    tags = set(case.operation.tags or [])
    checks = [not_a_server_error, response_schema_conformance, content_type_conformance]
    if OWNER[key].startswith(STRICT_MODULES):
        checks.append(status_code_conformance)
    roles = [Role.admin] + ([Role.labeler] if tags & LABELER_TAGS else [])
    for role in roles:
        try:
            case.call_and_validate(headers=auth(tokens[role]), checks=checks)
        except Exception:
            if key in KNOWN_BUGS:
                pytest.xfail(f"known, reported: {KNOWN_BUGS[key]}")
            raise
