"""Demo ``shadow``: the challenger scores every request in the background; users only see the champion.

Concept: shadow deployment (C23). With strategy ``shadow`` the router always serves the champion and
names the challenger as the *mirror*. The API sends the champion's answer first; the mirrored
scoring runs afterwards as a background task (``Runtime.after_response``), so it can neither change
nor slow the answer, and a failing shadow is only counted. Its prediction is written to the
prediction log under ``<request id>:shadow`` (arm ``shadow``), and ``/metrics`` counts agreement
with the served answer. That gives a challenger real production inputs with zero user exposure;
what it cannot give is *outcomes of its own answers* (users never acted on them), which is what a
canary or an A/B test measures. Here the label is the true class, whatever was served, so the same
feedback scores both models on the same requests (`monitoring.shadow_report`, `mlops-lab shadow report`).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from lab.demos.prep import ensure_champion
from lab.demos.traffic import ensure_challenger, running_service, users
from monitoring.shadow_report import render, shadow_report
from serving.prediction_log import predictions_table

if TYPE_CHECKING:
    from core.context import LabContext
    from lab.demos.traffic import DemoService
    from lab.narrate import Narrator

AGREEMENT = re.compile(r'^mlops_shadow_predictions_total\{agreed="(true|false)"\} ([0-9.e+]+)$', re.MULTILINE)


def _answer(body: dict[str, Any]) -> str:
    """What a user receives, minus the per-request id and the strategy label: class, probabilities, model."""
    rows = [{"class": p["class"], "probabilities": p["probabilities"]} for p in body["predictions"]]
    return json.dumps({"predictions": rows, "model_version": body["model_version"], "arm": body["arm"]})


def _logged(service: DemoService, request_ids: list[str]) -> dict[str, Any]:
    """The served and the shadow record of each request, from the prediction log."""
    import sqlalchemy as sa

    service.flush()
    p = predictions_table.c
    wanted = request_ids + [f"{rid}:shadow" for rid in request_ids]
    query = sa.select(p.request_id, p.model_version, p.prediction, p.latency_ms).where(p.request_id.in_(wanted))
    if service.runtime.log is None:
        return {}
    with service.runtime.log.engine.connect() as conn:
        return {row.request_id: row for row in conn.execute(query)}


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else float("nan")


def run(n: Narrator, ctx: LabContext) -> None:
    """Champion-only answers, then the same requests with the challenger mirrored: compare and measure."""
    n.title("Shadow deployment: the challenger sees production, users never see it", "C23 shadow")
    n.step("Baseline: the champion alone answers 150 requests")
    ensure_champion(ctx, n)
    with running_service(ctx) as service:
        if ensure_challenger(ctx, n) is None:
            return
        service.refresh()
        people = users("shadow-user", 150)
        service.route(strategy="canary", canary_weight=0.0)
        plain = service.send(people, seed=7, feedback=False)
        n.say(f"answered by the champion, v{plain.bodies[0]['model_version']}: {plain.arms['champion']} requests")

        n.step("Switch the strategy to shadow (runtime state, no redeploy) and replay the same requests")
        service.route(strategy="shadow")
        since = datetime.now(UTC)
        mirrored = service.send(people, seed=7)  # then the true label of each, as a labelling process would
        same = sum(_answer(a) == _answer(b) for a, b in zip(plain.bodies, mirrored.bodies, strict=True))
        (n.ok if same == len(plain.bodies) else n.bad)(
            f"responses identical to champion-only answers: {same}/{len(plain.bodies)} "
            "(class, probabilities, model version and arm, byte for byte)"
        )
        n.why("the mirror runs after the response is sent (a background task), so it cannot change or delay it")

        n.step("What the shadow saw: agreement and latency, from /metrics and the prediction log")
        counts = {k: float(v) for k, v in AGREEMENT.findall(service.client.get("/metrics").text)}
        agreed, total = counts.get("true", 0.0), counts.get("true", 0.0) + counts.get("false", 0.0)
        n.say(f'/metrics: mlops_shadow_predictions_total{{agreed="true"}} {agreed:g} of {total:g}')
        ids = [b["request_id"] for b in mirrored.bodies]
        log = _logged(service, ids)
        pairs = [(log[i], log[f"{i}:shadow"]) for i in ids if i in log and f"{i}:shadow" in log]
        agree = sum(served.prediction == shadow.prediction for served, shadow in pairs)
        rows: list[list[object]] = [
            [
                "served (champion)",
                f"v{pairs[0][0].model_version}" if pairs else "-",
                len(pairs),
                f"{_median([s.latency_ms for s, _ in pairs]):.2f} ms",
                "in-server time to the answer",
            ],
            [
                "shadow (challenger)",
                f"v{pairs[0][1].model_version}" if pairs else "-",
                len(pairs),
                f"{_median([m.latency_ms for _, m in pairs]):.2f} ms",
                "model time after the response",
            ],
        ]
        n.table(
            "prediction log: one record per answer, mirrored ones under <id>:shadow",
            ["role", "version", "rows", "median latency", "what the number is"],
            rows,
        )
        n.why(
            "the shadow's latency is its own model time on a worker after the answer was sent: what mirroring "
            "costs in compute, never part of a user's wait (http_request_duration_seconds stops at the answer's "
            "last byte)"
        )
        rate = agree / len(pairs) if pairs else 0.0
        n.ok(f"agreement rate {rate:.1%} ({agree}/{len(pairs)} rows); each disagreement is in the log to inspect")
        n.why(
            "shadow answers 'does it behave the same on real inputs, and how fast is it?' with zero user risk; "
            "it cannot show how users react to its answers, so promotion still goes through a canary or A/B test"
        )
        if rate == 1.0:
            n.say("(this challenger was trained with the champion's recipe, so it agrees everywhere)")

        n.step("Online accuracy with zero exposure: the labels score the shadow too (`mlops-lab shadow report`)")
        engine = service.runtime.log.engine if service.runtime.log is not None else ctx.settings.prediction_log_uri
        comparisons = shadow_report(engine, since=since, model_name=ctx.settings.model_name)
        for line in render(comparisons):
            n.say(line)
        labelled = sum(c.labelled for c in comparisons)
        (n.ok if labelled else n.bad)(
            f"both models scored on the same {labelled} labelled requests: a paired comparison, same denominator"
        )
        n.why(
            "possible here because the label is the true species, whatever answer was shown; where the label is a "
            "reaction to the answer (a click on a shown recommendation) the shadow has no outcome: that needs "
            "off-policy evaluation or real exposure (canary, A/B)"
        )
    n.code(
        "serving/router.py (shadow decision)",
        "serving/runtime.py (after_response)",
        "serving/predict.py (Predictor.shadow)",
        "monitoring/shadow_report.py (shadow accuracy, McNemar)",
        "serving/metrics.py",
    )
