"""The operations demos (logs vs metrics, API fuzzing, security, load test) and a bounded load test.

The demos share one state folder (one champion, trained by the first demo that needs it) and each
test asserts the lines that carry the demo's point. `test_bounded_load_answers_every_request` runs
the load generator of ``make bench`` against uvicorn on a loopback port and checks correctness
under concurrency, never speed: timings on a shared 2-core machine are not a test.
"""

from __future__ import annotations

import json
import re

import httpx
import pytest
import sqlalchemy as sa

from core.context import LabContext

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory, make_settings, demo_context) -> LabContext:
    settings = make_settings(tmp_path_factory.mktemp("ops-demos") / "state", poll_interval_s=3600)
    return demo_context(settings)


def logged_predictions(ctx: LabContext) -> int:
    """Rows in the state's own prediction log (the one monitoring and feedback read)."""
    from serving.prediction_log import predictions_table

    engine = sa.create_engine(ctx.settings.prediction_log_uri)
    try:
        if not sa.inspect(engine).has_table(predictions_table.name):
            return 0
        with engine.connect() as conn:
            return int(conn.scalar(sa.select(sa.func.count()).select_from(predictions_table)) or 0)
    finally:
        engine.dispose()


def test_logs_vs_metrics_demo_counts_every_logged_request(run_demo, ctx: LabContext) -> None:
    out = run_demo("logs_vs_metrics", ctx, width=200)
    assert re.search(
        r'\{"ts":"[^"]+Z","level":"info","method":"POST","path":"/v1/predict","status":200,.*"request_id":"logs-demo-1"',
        out,
    )
    assert '"path":"/v1/predict","status":422' in out
    assert '"path":"unmatched","status":404' in out
    assert "✔ http_requests_total matches the log lines for every (route, method, status)" in out
    assert "4 rows predicted (the batch counts 3)" in out  # no challenger here: 1 + 3 rows
    assert "✘" not in out


def test_api_fuzz_demo_sends_generated_cases_and_gets_no_5xx(run_demo, ctx: LabContext) -> None:
    out = run_demo("api_fuzz", ctx, width=200)
    summary = re.search(r"✔ (\d+) requests in [\d.]+ s: 0 server errors \(5xx\)", out)
    assert summary is not None
    assert int(summary.group(1)) >= 100
    assert re.search(r"POST /v1/predict\s+│ 200×\d+", out)  # valid cases reached the model
    assert re.search(r"got 422, naming the fields: [\w.]+: ", out)  # a generated malformed body, refused


def test_security_demo_shows_each_refusal(run_demo, ctx: LabContext) -> None:
    out = run_demo("security", ctx, width=200)
    assert re.search(r"\(none\)\s+│ 401 .*WWW-Authenticate: Bearer", out)
    assert re.search(r"Bearer not-the-token\s+│ 403", out)
    assert re.search(r"Bearer <the token>\s+│ 200", out)
    assert "GET /v1/admin/state → 404" in out
    assert "X-Force-Arm without the admin token → 401; with it → 200, logged as strategy 'forced'" in out
    assert "the same X-Request-Id with other features → 409" in out
    assert "X-Feedback-Token → 401, with a guessed one → 403, with the answer's own → 200 recorded" in out
    assert "→ 413: request body too large" in out
    assert "10,001 rows" in out
    assert "→ 422: field 'rows'" in out
    assert "5 requests at once → 200 200 200 429 429" in out
    assert "Access-Control-Allow-Origin: absent" in out
    assert "✔ 0 finding(s)" in out


@pytest.mark.load
def test_load_test_demo_answers_all_then_refuses_the_overload_with_429(run_demo, ctx: LabContext) -> None:
    before = logged_predictions(ctx)
    out = run_demo("load_test", ctx, width=200)
    for concurrency in (1, 8):
        row = re.search(rf"│ {concurrency}\s+│ (\d+)\s+│ (\d+)\s+│ (\d+)\s+│", out)
        assert row is not None, f"no table row for concurrency {concurrency}"
        sent, ok, errors = map(int, row.groups())
        assert (ok, errors) == (sent, 0)
    batching = re.search(r"rows per model call: ([\d.]+) at concurrency 8 against ([\d.]+) at 1", out)
    assert batching is not None
    assert float(batching.group(2)) == 1.0  # one client: every call scores one request's row
    assert float(batching.group(1)) >= 1.0  # eight clients: shared calls when requests meet (timing-dependent)
    overload = re.search(r"✔ (\d+) refused with 429, 0 server errors, 0 timeouts or broken connections", out)
    assert overload is not None
    assert int(overload.group(1)) > 0
    assert "the next request: 429, Retry-After:" in out
    assert (ctx.settings.state / "load-test" / "measured.db").exists()
    assert logged_predictions(ctx) == before  # synthetic traffic never reaches the real prediction log


@pytest.mark.load
def test_bounded_load_answers_every_request(ctx: LabContext) -> None:
    from bench.loadgen import Target, percentile, run_load
    from lab.demos.api_fuzz import serve_on_loopback
    from lab.demos.prep import ensure_champion
    from serving.app import create_app

    ensure_champion(ctx)
    settings = ctx.settings.model_copy(update={"rate_limit_per_s": 0.0, "access_log": False})
    app = create_app(settings, ctx.params)
    row = {name: (spec.min + spec.max) / 2 for name, spec in ctx.params.dataset.features.items()}
    body = json.dumps(row).encode()
    requests = 200
    with serve_on_loopback(app) as url:
        port = int(url.rsplit(":", 1)[1])
        result = run_load(Target(port, "/v1/predict", body), concurrency=4, requests=requests, cap_s=300)
        scrape = httpx.get(f"{url}/metrics", timeout=30).text
    assert result.errors == 0
    assert len(result.latencies) == requests  # every request sent was answered 200
    p50, p95, p99 = (percentile(result.latencies, q) for q in (50, 95, 99))
    assert 0 < p50 <= p95 <= p99 <= max(result.latencies)
    counted = re.search(
        r'^http_requests_total\{method="POST",route="/v1/predict",status="200"\} ([0-9.]+)$', scrape, re.MULTILINE
    )
    assert counted is not None
    assert float(counted.group(1)) == requests  # the server counted exactly what the client sent
    assert not re.search(r'status="5\d\d"', scrape)
