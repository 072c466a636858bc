"""Demo ``serverless``: the service's app as a Lambda handler, fed real API Gateway events, cold then warm.

Concept: serverless deployment (C55). The demo builds the handler (`serving.lambda_handler.LambdaApp`)
over this demo's own registry and prediction log, exactly as the first invocation of a new execution
environment does, and times that cold start. Then it invokes the API Gateway HTTP API (payload 2.0)
events kept in tests/fixtures/api_gateway_v2/ -- a prediction, the same one warm, a base64 body, bad
input, health, the MLflow protocol, the admin API without a token -- and shows that every prediction
is in the log when the handler returns. It contrasts Mangum's default lifespan handling (start-up and
shutdown around every call) with ours (once per environment), and ends with the cost per million
requests against always-on pods (`ops.serverless_cost`, list prices stated as assumptions).
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.demos.prep import ensure_champion
from ops.capacity import build_plan
from ops.serverless_cost import FunctionPrices, breakeven_millions_per_month, cost_per_million
from serving.log_reader import rows_of_request

if TYPE_CHECKING:
    from core.context import LabContext
    from lab.narrate import Narrator
    from serving.lambda_handler import LambdaApp

EVENTS = Path("tests/fixtures/api_gateway_v2")
MEMORY_GB = 1.0  # the function's configured memory in the cost example (an assumption)


class DemoContext:
    """The one method of Lambda's context object the handler reads."""

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def _event(ctx: LabContext, name: str, request_id: str | None = None) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((ctx.settings.project_dir / EVENTS / f"{name}.json").read_text("utf-8"))
    if request_id is not None:
        event["headers"]["x-request-id"] = request_id
    return event


def _body(answer: dict[str, Any]) -> Any:
    text = base64.b64decode(answer["body"]) if answer.get("isBase64Encoded") else answer["body"]
    return json.loads(text)


def _invoke(app: LambdaApp, event: dict[str, Any]) -> tuple[dict[str, Any], float]:
    start = time.perf_counter()
    answer = app(event, DemoContext())
    return answer, time.perf_counter() - start


def _summary(answer: dict[str, Any]) -> str:
    payload = _body(answer)
    if "predictions" in payload and payload["predictions"] and isinstance(payload["predictions"][0], dict):
        return ", ".join(p["class"] for p in payload["predictions"]) + f" (v{payload['model_version']})"
    if "predictions" in payload:
        return f"predictions {payload['predictions']}"
    if "error" in payload:
        return payload["error"][:70]
    if "ready" in payload:
        return f"ready={payload['ready']}, champion v{payload['models']['champion']['version']}"
    return json.dumps(payload)[:70]


def _logged(ctx: LabContext, request_id: str) -> int:
    """Rows of a request in the prediction log, read with a connection of our own (no flush)."""
    return rows_of_request(ctx.settings.prediction_log_uri, request_id)


def run(n: Narrator, ctx: LabContext) -> None:
    from mangum import Mangum

    from serving.app import create_app
    from serving.lambda_handler import LambdaApp

    n.title("Serverless: the same app as a Lambda handler, cold start then warm", "C55")
    settings = ctx.settings.model_copy(
        update={
            "admin_token": secrets.token_urlsafe(24),
            "poll_interval_s": 3600.0,
            "access_log": False,
            "micro_batch_rows": 0,
        }
    )
    ensure_champion(ctx, n)

    n.step("Cold start: a new execution environment builds the handler (import done, lifespan once)")
    app = LambdaApp(settings, ctx.params)
    try:
        n.say(f"lifespan start-up: registry lookup, model load, prediction log opened: {app.cold_start_s:.2f} s")
        n.why("Lambda starts one environment per concurrent request; the first request in each pays this")

        n.step("API Gateway HTTP API events (payload 2.0) through Mangum into the service's own app")
        rows = []
        for label, name, request_id in (
            ("predict (first, cold)", "predict", "demo-cold"),
            ("predict (warm)", "predict", "demo-warm"),
            ("predict, base64 body", "predict_base64", "demo-b64"),
            ("bad input", "predict_bad_input", None),
            ("GET /healthz", "healthz", None),
            ("GET /readyz", "readyz", None),
            ("MLflow /invocations", "invocations", "demo-invocations"),
            ("admin API, no token", "admin_no_token", None),
        ):
            answer, took = _invoke(app, _event(ctx, name, request_id))
            logged = "-" if request_id is None else str(_logged(ctx, request_id))
            rows.append([label, answer["statusCode"], f"{took * 1000:.1f} ms", logged, _summary(answer)])
        n.table("one warm environment", ["event", "status", "handler time", "rows logged", "answer"], rows)
        n.ok("each prediction is in the log when the handler returns: Lambda may freeze the environment right after")
        n.why("bad input is a 422 naming the fields and the admin API a 401: the same contract as the service")

        n.step("Why the lifespan is ours, not Mangum's: its default starts and stops the app around every call")
        per_call = Mangum(create_app(settings, ctx.params), lifespan="auto")
        costs = [_invoke(per_call, _event(ctx, "predict", f"demo-auto-{i}"))[1] for i in range(2)]  # type: ignore[arg-type]
        _, warm = _invoke(app, _event(ctx, "predict", "demo-warm-again"))
        n.table(
            "one prediction",
            ["lifespan handling", "per request"],
            [
                ["Mangum lifespan='auto' (model loaded, log opened and closed each call)", f"{min(costs):.2f} s"],
                ["once per environment (serving/lambda_handler.py)", f"{warm * 1000:.1f} ms"],
            ],
        )
    finally:
        app.close()

    n.step("Cost per million requests: function against always-on pods (list prices, assumptions)")
    prices = FunctionPrices()
    cost = cost_per_million(warm, MEMORY_GB, app.cold_start_s, 1000, prices)
    billed_ms, gb = max(1, -(-warm * 1000 // 1)), f"{MEMORY_GB:.0f} GB"
    n.table(
        f"a million requests at {MEMORY_GB:.0f} GB, warm {warm * 1000:.1f} ms, 1 cold start per 1,000",
        ["part", "arithmetic", "USD"],
        [
            ["requests", f"1M x ${prices.per_million_requests:.2f}/M", f"{cost.requests:.3f}"],
            ["duration", f"1M x {billed_ms:.0f} ms x {gb} x ${prices.per_gb_second}/GB-s", f"{cost.duration:.3f}"],
            ["cold starts", f"1,000 x {app.cold_start_s:.2f} s x {gb} x the GB-s price", f"{cost.cold_starts:.3f}"],
            ["API Gateway", f"1M x ${prices.gateway_per_million:.2f}/M", f"{cost.gateway:.3f}"],
            ["total", "", f"{cost.total:.2f}"],
        ],
    )  # fmt: skip
    pods = build_plan()[0]  # the capacity plan from the committed benchmark figures (docs/capacity.md)
    breakeven = breakeven_millions_per_month(pods.monthly_api_cost, cost.total)
    n.say(
        f"the always-on API pods cost ${pods.monthly_api_cost:.2f} a month whatever the traffic (docs/capacity.md): "
        f"the function is cheaper below about {breakeven:.0f} million requests a month "
        f"({breakeven * 1e6 / (730 * 3600):.0f} req/s on average), the pods above"
    )
    n.why("per-request billing wins for low or bursty traffic; a busy, steady service is cheaper on pods")
    n.code("serving/lambda_handler.py", "docker/lambda.Dockerfile", "ops/serverless_cost.py", "docs/serverless.md")
