"""Demo ``api-fuzz``: schemathesis turns the API's own OpenAPI document into hundreds of requests.

Concept: API contract testing and fuzzing (C42). The OpenAPI document is generated from the same
typed schemas that validate requests, so it is a machine-readable contract. schemathesis reads it
and, per operation, generates *valid* requests (bodies, headers, path parameters that follow the
schema) and *invalid* ones (wrong types, missing or extra fields, out-of-range values). The one
property checked here holds for any input: **the service never answers 5xx**. A 4xx is the
service doing its job (refusing bad input and saying which field is wrong); a 5xx is a bug.

The demo serves the real app with uvicorn on a loopback port in this process, sends a bounded,
derandomized number of cases per operation (the same cases every run) and tabulates the answers.
Two adjustments, on a copy of the document, make the valid cases reach real work: path
parameters (``{name}``, ``{version}``) are drawn from the served model, and feedback ids from
requests served just before. ``/invocations`` and ``/v2/.../infer`` read their body raw (MLflow
and Open Inference wire formats), so the published document declares no body for them;
tests/integration/serving/test_api_fuzz.py adds those contracts and runs more cases per operation.
"""

from __future__ import annotations

import contextlib
import copy
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from lab.demos.prep import ensure_champion
from serving.app import create_app
from serving.server import bind_tcp_socket

if TYPE_CHECKING:
    from schemathesis import APIOperation, BaseSchema, GenerationMode
    from starlette.types import ASGIApp

    from core.context import LabContext
    from lab.narrate import Narrator

CASES = 12  # generated cases per operation and mode: bounded so the demo stays well under 30 s
SERVED = ["fuzz-demo-0", "fuzz-demo-1"]  # predictions made before fuzzing; feedback is fuzzed against them
Rejected = tuple[Any, int, str]  # (body sent, status, answer) of a 4xx


@contextmanager
def serve_on_loopback(app: ASGIApp, lifespan: Literal["on", "off"] = "on", timeout_s: float = 60.0) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread on a free loopback port; yield its base URL, then stop it."""
    import uvicorn

    sock = bind_tcp_socket("127.0.0.1", 0)
    config = uvicorn.Config(app, lifespan=lifespan, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    try:
        while not server.started:  # readiness poll (lifespan done, socket listening), bounded
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start on loopback: its log above says why")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def pinned_spec(spec: dict[str, Any], model_name: str, versions: list[str], served: list[str]) -> dict[str, Any]:
    """A copy of ``spec`` whose model name and version parameters and feedback ids are drawn from real ones."""
    spec = copy.deepcopy(spec)
    known = {"name": [model_name], "version": versions}
    for operations in spec["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] in ("path", "query") and parameter["name"] in known:
                    parameter["schema"] = {"type": "string", "enum": known[parameter["name"]]}
    feedback = spec.get("components", {}).get("schemas", {}).get("FeedbackRequest", {}).get("properties", {})
    if "request_id" in feedback:
        feedback["request_id"]["enum"] = served
    return spec


@dataclass
class Outcome:
    """What one operation answered to its valid and invalid cases."""

    valid: Counter[int] = field(default_factory=Counter)
    invalid: Counter[int] = field(default_factory=Counter)
    rejected: list[Rejected] = field(default_factory=list)


def operations_of(schema: BaseSchema) -> list[APIOperation]:
    """Every operation of the document; an operation schemathesis cannot read is an error naming it."""
    from schemathesis.core.result import Err

    found = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise RuntimeError(f"the OpenAPI document has an operation schemathesis cannot read: {result.err()}")
        found.append(result.ok())
    return found


def fuzz(
    operation: APIOperation, mode: GenerationMode, url: str, session: Any, cases: int
) -> tuple[Counter[int], list[Rejected]]:
    """Send ``cases`` derandomized cases of one operation; count statuses, keep the 4xx answers."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import Unsatisfiable

    statuses: Counter[int] = Counter()
    rejected: list[Rejected] = []
    bounded = settings(
        max_examples=cases,
        derandomize=True,  # the same cases every run
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: nothing here fails the run
        suppress_health_check=list(HealthCheck),
    )

    @given(case=operation.as_strategy(mode))
    @bounded
    def send(case: Any) -> None:
        response = case.call(base_url=url, session=session, timeout=30)
        statuses[response.status_code] += 1
        if 400 <= response.status_code < 500:
            rejected.append((case.body, response.status_code, response.content.decode(errors="replace")))

    with contextlib.suppress(Unsatisfiable):  # nothing in this operation can be made invalid (no inputs)
        send()
    return statuses, rejected


def _illustrative(outcome: Outcome | None, fields: list[str]) -> Rejected | None:
    """A 422 worth showing: to a JSON object of contract fields if there is one, else any 422."""
    rejected = [r for r in (outcome.rejected if outcome else []) if r[1] == 422]

    def names_a_field(answer: str) -> bool:
        return any(str(d.get("field")).split(".")[-1] in fields for d in json.loads(answer).get("detail", []))

    # Prefer the shortest body of contract fields only, refused for one of them: the fault is in a value.
    plain = [r for r in rejected if isinstance(r[0], dict) and set(r[0]) <= set(fields) and names_a_field(r[2])]
    return min(plain, key=lambda r: len(repr(r[0]))) if plain else (rejected[0] if rejected else None)


def _summary(statuses: Counter[int]) -> str:
    return " ".join(f"{code}×{count}" for code, count in sorted(statuses.items())) or "-"


def run(n: Narrator, ctx: LabContext) -> None:
    """Fuzz every operation of the served API for a bounded number of cases; show that none was a 5xx."""
    import requests
    import schemathesis
    from schemathesis import GenerationMode

    n.title("API contract + fuzzing: generated requests from the OpenAPI document", "C42 API contract + fuzzing")
    n.step("Serve the API (uvicorn, loopback) and read its OpenAPI document")
    ensure_champion(ctx, n)
    settings = ctx.settings.model_copy(update={"rate_limit_per_s": 0.0, "admin_token": None, "access_log": False})
    app = create_app(settings, ctx.params)
    with serve_on_loopback(app) as url, requests.Session() as session:
        versions = [m["version"] for m in session.get(f"{url}/readyz", timeout=30).json()["models"].values()]
        row = {name: (spec.min + spec.max) / 2 for name, spec in ctx.params.dataset.features.items()}
        for request_id in SERVED:
            session.post(f"{url}/v1/predict", json=row, headers={"X-Request-Id": request_id}, timeout=30)
        schema = schemathesis.openapi.from_dict(pinned_spec(app.openapi(), settings.model_name, versions, SERVED))
        operations = operations_of(schema)
        n.say(f"{len(operations)} operations in the document; {CASES} valid and up to {CASES} invalid cases each")

        n.step("Send the generated cases and count the answers")
        outcomes: dict[str, Outcome] = {}
        began = time.perf_counter()
        for operation in operations:
            outcome = outcomes[operation.label] = Outcome()
            outcome.valid, _ = fuzz(operation, GenerationMode.POSITIVE, url, session, CASES)
            outcome.invalid, outcome.rejected = fuzz(operation, GenerationMode.NEGATIVE, url, session, CASES)
        elapsed = time.perf_counter() - began
    n.table(
        "answers per operation (status×count)",
        ["operation", "valid cases", "invalid cases"],
        [[label, _summary(o.valid), _summary(o.invalid)] for label, o in outcomes.items()],
    )
    total = sum(sum(o.valid.values()) + sum(o.invalid.values()) for o in outcomes.values())
    errors = sum(c for o in outcomes.values() for s, c in (o.valid + o.invalid).items() if s >= 500)
    (n.ok if errors == 0 else n.bad)(f"{total} requests in {elapsed:.1f} s: {errors} server errors (5xx)")
    n.why(
        "any 5xx is a bug: the input was bad (should be 4xx) or the service broke; the fuzzer finds inputs no one wrote"
    )

    n.step("One malformed request the contract refused")
    shown = _illustrative(outcomes.get("POST /v1/predict"), [*ctx.params.dataset.feature_names, "rows"])
    if shown is None:
        n.say("[dim]no 422 among this run's invalid /v1/predict cases[/dim]")
    else:
        body, status, answer = shown
        detail = json.loads(answer).get("detail", [])
        named = "; ".join(f"{d['field']}: {d['msg']}" for d in detail[:3])
        named += f" (+{len(detail) - 3} more)" if len(detail) > 3 else ""
        sent = json.dumps(body, default=str)
        n.say(f"[dim]sent:[/dim] {sent[:160]}{' ...' if len(sent) > 160 else ''}")
        n.say(f"[dim]got {status}, naming the fields:[/dim] {named}")
        n.why("the 422 names the field and what was wrong, so a client can fix its request without reading our code")
    n.say("invalid cases may still be answered 2xx: an extra header or query parameter is allowed by the spec")
    n.code(
        "serving/app.py (create_app: the OpenAPI document)",
        "serving/schemas.py",
        "tests/integration/serving/test_api_fuzz.py",
    )
