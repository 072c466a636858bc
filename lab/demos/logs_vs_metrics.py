"""Demo ``logs-vs-metrics``: the same requests seen twice, as JSON log lines and as Prometheus series.

Concept: monitoring vs logging (C30). Every request through the API leaves two traces, written by
one piece of code (`serving.metrics.MetricsMiddleware`):

- a **log line**: one JSON object per request on the ``serving.access`` logger (method, route,
  status, latency, and for a prediction its request id, arm and model version). Lines are events:
  they answer "what happened to *this* request?" and cost storage per request;
- **metrics**: counters and a latency histogram, labelled only by bounded sets of values (route
  template, status, model version, arm, class). Metrics are aggregates: they answer "how many, how
  fast, how often does it fail?" at a fixed cost however much traffic there is, and alerts and
  dashboards (and the canary analysis) are built on them.

The demo sends a handful of requests to the real app in process (a good one with the caller's
request id, a batch, an invalid one, a forced challenger when there is one, a made-up URL),
captures the log lines the service writes, scrapes ``/metrics`` and checks that both agree.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from lab.demos.prep import ensure_champion
from lab.demos.traffic import running_service

if TYPE_CHECKING:
    from core.context import LabContext
    from lab.demos.traffic import DemoService
    from lab.narrate import Narrator

ACCESS_LOGGER = "serving.access"
SERIES = re.compile(
    r"^(http_requests_total|http_request_duration_seconds_count|mlops_predictions_total)\{(.*)\} ([0-9.e+]+)$"
)


class Captured(logging.Handler):
    """Keeps every record's message (each one JSON object) in memory."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(record.getMessage()))


def _send(service: DemoService) -> list[tuple[str, int]]:
    """The demo's requests; returns what each one was and its status."""
    dataset = service.ctx.params.dataset
    rows = service.rows(4, seed=30)[dataset.feature_names].to_dict("records")
    client = service.client
    ready = client.get("/readyz")
    sent = [("GET /readyz (which models are loaded?)", ready.status_code)]
    ok = client.post("/v1/predict", json=rows[0], headers={"X-Request-Id": "logs-demo-1"})
    sent.append(("one row, X-Request-Id: logs-demo-1", ok.status_code))
    batch = client.post("/v1/predict", json={"rows": rows[1:4]}, headers={"X-Request-Id": "logs-demo-batch"})
    sent.append(("a batch of 3 rows", batch.status_code))
    first = dataset.feature_names[0]
    invalid = client.post("/v1/predict", json={**rows[0], first: "abc"})
    sent.append((f'{first}: "abc" (invalid)', invalid.status_code))
    if "challenger" in ready.json().get("models", {}):
        forced = client.post("/v1/predict", json=rows[0], headers={"X-Force-Arm": "challenger", **service.admin})
        sent.append(("X-Force-Arm: challenger", forced.status_code))
    sent.append(("GET /v1/no-such-route", client.get("/v1/no-such-route").status_code))
    return sent


def _series(metrics_text: str) -> list[tuple[str, dict[str, str], float]]:
    """The request and prediction series of a /metrics scrape: (name, labels, value)."""
    found = []
    for line in metrics_text.splitlines():
        if match := SERIES.match(line):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2)))
            found.append((match.group(1), labels, float(match.group(3))))
    return found


def run(n: Narrator, ctx: LabContext) -> None:
    """Send a few requests, show their log lines and their metrics, and check that both agree."""
    n.title("Monitoring vs logging: one line per request, one counter per kind", "C30 monitoring vs logging")
    n.step("Start the service in process and capture its access log")
    ensure_champion(ctx, n)
    logger, captured = logging.getLogger(ACCESS_LOGGER), Captured()
    level, propagate = logger.level, logger.propagate
    # The service writes these lines to stdout (serving/access_log.py); here they are captured instead.
    quiet = replace(ctx, settings=ctx.settings.model_copy(update={"access_log": False}))
    logger.addHandler(captured)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        with running_service(quiet) as service:
            sent = _send(service)
            lines = list(captured.lines)  # before the scrape, which is logged too
            scrape = service.client.get("/metrics").text
    finally:
        logger.removeHandler(captured)
        logger.setLevel(level)
        logger.propagate = propagate
    n.table("requests sent", ["request", "status"], sent)
    if not any(request.startswith("X-Force-Arm") for request, _ in sent):
        n.say("[dim]no challenger loaded, so no forced-challenger request (`mlops-lab demo canary` makes one)[/dim]")

    n.step(f"The log: {len(lines)} JSON lines on the logger `{ACCESS_LOGGER}`, one per request")
    for line in lines:  # latency rounded for display
        shown = {**line, "latency_ms": round(line["latency_ms"], 2)}
        n.say(f"[dim]{json.dumps(shown, separators=(',', ':'))}[/dim]")
    n.why(
        "a line is an event: grep it by request id to follow one request (and join it to its prediction and "
        "its feedback); its arm and model version say who answered. Per-request detail, paid per request"
    )

    n.step("The metrics: the same requests as counters, from GET /metrics")
    series = _series(scrape)
    n.table(
        "Prometheus series after these requests",
        ["series", "labels", "value"],
        [
            [name, ", ".join(f"{k}={v}" for k, v in sorted(labels.items())), f"{value:g}"]
            for name, labels, value in series
        ],
    )
    counted = {(s["route"], s["method"], s["status"]): v for name, s, v in series if name == "http_requests_total"}
    logged = Counter((line["path"], line["method"], str(line["status"])) for line in lines)
    agree = counted == {key: float(count) for key, count in logged.items()}
    (n.ok if agree else n.bad)(
        f"http_requests_total matches the log lines for every (route, method, status): {dict(sorted(logged.items()))}"
    )
    rows = sum(v for name, _, v in series if name == "mlops_predictions_total")
    n.say(f"mlops_predictions_total counts rows, not requests: {rows:g} rows predicted (the batch counts 3)")
    n.say(
        'the made-up URL is counted under route="unmatched": labels are route templates, never raw paths, '
        "so a client cannot create new series"
    )
    n.why(
        "no request id in any label: every distinct label value is a new time series, so an id per request "
        "would grow Prometheus without bound. Metrics stay cheap, so they are kept for months and alerted on"
    )

    n.step("Which one to reach for")
    n.table(
        "logs vs metrics",
        ["question", "answer from", "because"],
        [
            ["why did request logs-demo-1 get that answer?", "log line", "one event, with its id, arm and version"],
            ["is the 5xx rate above 1 % for 5 minutes?", "metrics", "an aggregate over time: alert rule"],
            ["p99 latency per endpoint this week", "metrics", "histogram buckets, fixed cost"],
            ["which client sent the 422s, and with what?", "log line", "per-request detail (sampled if heavy)"],
            ["is the challenger's class mix shifting?", "metrics", "mlops_predictions_total by version, arm and class"],
        ],
    )
    n.why("alerts fire on metrics; the log lines are where you go next, to find the requests behind the alert")
    n.code("serving/metrics.py (Metrics, MetricsMiddleware)", "serving/access_log.py", "serving/app.py (/metrics)")
