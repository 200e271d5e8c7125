"""One documented error shape: every 4xx of every operation in the OpenAPI schema is an ErrorOut
under application/json, and real error bodies of each kind validate against it."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.main import create_app
from app.ops.errors import ErrorOut
from tests.factories import auth, make_tasks, make_user


def _subclasses(cls: type) -> set[str]:
    return {cls.__name__}.union(*(_subclasses(sub) for sub in cls.__subclasses__()))


@pytest.mark.dbless
def test_every_4xx_in_the_schema_is_error_out() -> None:
    """ErrorOut, or a model extending it with more fields (labeling's 409 adds `next`)."""
    schema = create_app().openapi()
    shapes = tuple(f"/{name}" for name in _subclasses(ErrorOut))
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    seen = 0
    for path, operations in schema["paths"].items():
        for method, op in operations.items():
            for code, response in op["responses"].items():
                if not code.startswith("4"):
                    continue
                where = f"{method.upper()} {path} {code}"
                content = response.get("content", {})
                assert list(content) == ["application/json"], where
                assert content["application/json"]["schema"]["$ref"].endswith(shapes), where
                seen += 1
            if op.get("parameters") or op.get("requestBody"):
                assert "422" in op["responses"], f"{method.upper()} {path} has no 422"
    assert seen > 50


def test_error_bodies_of_every_kind_are_error_out(client) -> None:  # type: ignore[no-untyped-def]
    admin, labeler = make_user("root", "admin"), make_user("lab")
    (task_id,) = make_tasks(1)
    ndjson = {"content-type": "application/x-ndjson"}
    bodies = {
        "401": client.get("/api/v1/tasks/next"),
        "403": client.get("/api/v1/users", headers=auth(labeler)),
        "404": client.get("/api/v1/exports/77", headers=auth(admin)),
        "422 validation": client.post(
            f"/api/v1/tasks/{task_id}/judgments", json={"choice": 5}, headers=auth(labeler)
        ),
        "422 message": client.put(
            "/api/v1/guidelines", json={"markdown": "a\u0000"}, headers=auth(admin)
        ),
        "422 import": client.post(
            "/api/v1/import/prompts", content=b"{oops\n", headers={**ndjson, **auth(admin)}
        ),
        "413": client.post("/api/v1/guidelines", content=b"x" * 1_100_000, headers=auth(admin)),
        "v1 401": client.get("/v1/models"),
        "v1 422": client.post("/v1/chat/completions", json={}, headers=auth(labeler)),
        "v1 404": client.post(
            "/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "hi"}]},
            headers=auth(labeler),
        ),
    }
    for kind, r in bodies.items():
        assert 400 <= r.status_code < 500, (kind, r.status_code, r.text)
        try:
            parsed = ErrorOut.model_validate(r.json())
        except ValidationError as e:
            raise AssertionError(f"{kind}: {r.text}") from e
        if kind.startswith("v1"):  # OpenAI clients read the `error` object
            assert parsed.error is not None and parsed.error.message, (kind, r.text)
    assert bodies["422 import"].json()["errors"][0]["line"] == 1
    assert isinstance(bodies["v1 422"].json()["detail"], list)
