"""The OpenAPI document lists the answers that come from outside a route, on every route (C42).

The edge middlewares (413 body size, 429 rate) and the shared exception handlers (503 for a database
outage, 422 for an invalid request) answer for any route, so a route added later must not forget them:
these tests walk the whole document, admin routes included, instead of naming routes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from core.params import Params
from core.settings import Settings
from serving.app import create_app
from serving.errors import shared_responses

TOKEN = "workshop-admin-token-example"


def operations(settings: Settings, params: Params) -> Iterator[tuple[str, dict[str, Any]]]:
    document = create_app(settings, params).openapi()
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield f"{method.upper()} {path}", operation


@pytest.mark.parametrize("rate_limit_per_s", [200.0, 0.0])
def test_every_operation_documents_the_shared_answers(
    settings: Settings, params: Params, rate_limit_per_s: float
) -> None:
    settings = settings.model_copy(update={"admin_token": TOKEN, "rate_limit_per_s": rate_limit_per_s})
    shared = {str(s) for s in shared_responses(rate_limited=rate_limit_per_s > 0)}
    assert {"408", "413", "503"} <= shared
    assert ("429" in shared) == (rate_limit_per_s > 0)
    found = dict(operations(settings, params))
    assert any(label.startswith("PUT /v1/admin/") for label in found)  # the admin routes are walked too
    missing = {label: sorted(shared - set(op["responses"])) for label, op in found.items()}
    assert {label: codes for label, codes in missing.items() if codes} == {}


def test_retry_after_is_documented_where_the_shared_answers_set_it(settings: Settings, params: Params) -> None:
    """429 (rate limit) and the database handler's 503 carry Retry-After: the document says so."""
    for label, operation in operations(settings.model_copy(update={"admin_token": TOKEN}), params):
        assert "Retry-After" in operation["responses"]["429"].get("headers", {}), label
        answer = operation["responses"]["503"]
        if answer.get("content", {}).get("application/json", {}).get("schema") == ERROR_BODY:
            assert "Retry-After" in answer.get("headers", {}), label


ERROR_BODY = {"$ref": "#/components/schemas/ErrorResponse"}


def test_every_422_is_the_body_the_validation_handler_sends(settings: Settings, params: Params) -> None:
    """FastAPI documents its own validation body by default; ours is ErrorResponse, on every route."""
    invalid = {
        label: op["responses"]["422"]["content"]["application/json"]["schema"]
        for label, op in operations(settings.model_copy(update={"admin_token": TOKEN}), params)
        if "422" in op["responses"]
    }
    assert "POST /v1/feedback" in invalid
    assert "PUT /v1/admin/weights" in invalid
    assert {label: schema for label, schema in invalid.items() if schema != ERROR_BODY} == {}
