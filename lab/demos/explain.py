"""Demo ``explain``: why did the model say that? Contributions that add up, per row and over time.

Concept: model explanations (C57). The champion (logistic regression) is trained and registered; its model
card carries the global explanation on the holdout. The real app then answers ``POST /v1/explain`` for one
row: a base value plus one contribution per model feature equals the model's margin for the predicted
class, exactly, while /v1/predict scores the same version through ONNX Runtime and nothing lands in the
prediction log. A random forest is explained by SHAP's TreeExplainer, in probability space. Last, the
explanation of a window of served rows is compared with the training-time one, as the monitoring
attribution check reports it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np

from lab.demos.prep import ensure_champion, ensure_raw_data
from monitoring.explanation_drift import explanation_shift
from pipelines.batches import generate_batch
from pipelines.data import read_csv
from pipelines.explain import Explainer
from pipelines.fit import fit_and_evaluate
from pipelines.registry import load_version_model

if TYPE_CHECKING:
    from core.context import LabContext
    from lab.narrate import Narrator

ROW = {"sepal_length": 6.3, "sepal_width": 2.8, "petal_length": 5.1, "petal_width": 1.5}  # a borderline flower


def _contribution_rows(contributions: dict[str, float], base: float, output: float) -> list[list[str]]:
    ranked = sorted(contributions.items(), key=lambda kv: -abs(kv[1]))
    return [["base value", f"{base:+.4f}"], *[[k, f"{v:+.4f}"] for k, v in ranked], ["= output", f"{output:+.4f}"]]


def _explain_over_http(n: Narrator, ctx: LabContext, version: str) -> None:
    from fastapi.testclient import TestClient
    from sqlalchemy import func, select

    from serving.app import create_app
    from serving.prediction_log import predictions_table

    settings = ctx.settings.model_copy(update={"rate_limit_per_s": 0, "access_log": False})
    with TestClient(create_app(settings, ctx.params)) as client:
        body = client.post("/v1/explain", json=ROW, headers={"X-Request-Id": "why-1"}).json()
        n.say(f"POST /v1/explain {json.dumps(ROW)}")
        n.table(
            f"v{body['model_version']} ({body['arm']}) predicts {body['class']}: {body['method']} method, "
            f"{body['output']} space",
            ["model feature", "contribution"],
            _contribution_rows(body["contributions"], body["base_value"], body["output_value"]),
        )
        total = body["base_value"] + sum(body["contributions"].values())
        n.ok(f"base + sum = {total:+.6f}, the model's margin for {body['class']} = {body['output_value']:+.6f}")
        by_input = ", ".join(f"{k} {v:+.3f}" for k, v in body["by_input"].items())
        n.say(f"by input (each derived feature split equally between its two inputs): {by_input}")
        n.why(
            f"/v1/predict scores v{version} with {body['served_runtime']}; the explanation is of the verified "
            "scikit-learn Pipeline of the same version, which the ONNX file was parity-checked against"
        )
        bad = client.post("/v1/explain", json={**ROW, "petal_width": "wide"})
        n.ok(f"bad input: {bad.status_code} naming {bad.json()['detail'][0]['field']}, as on /v1/predict")
        runtime = client.app.state.runtime  # type: ignore[attr-defined]
        runtime.log.flush()
        with runtime.log.engine.connect() as conn:
            rows = conn.execute(select(func.count()).select_from(predictions_table)).scalar_one()
        n.ok(f"prediction log rows after explaining: {rows} (an explanation is not a served prediction)")


def _model_card(ctx: LabContext, version: str) -> str:
    """The registered version's model card, as the registry stores it."""
    import tempfile
    from pathlib import Path

    from core.mlflow_config import mlflow_client

    client = mlflow_client(ctx.settings)
    run_id = str(client.get_model_version(ctx.settings.model_name, version).run_id)
    with tempfile.TemporaryDirectory(prefix="mlops-lab-card-") as tmp:
        return Path(client.download_artifacts(run_id, "model_card.md", tmp)).read_text(encoding="utf-8")


def run(n: Narrator, ctx: LabContext) -> None:
    """/v1/explain on one row, the card's global explanation, a forest's SHAP values, explanation drift."""
    p = ctx.params
    features = p.dataset.feature_names
    n.title("Explanations: why this class, in numbers that add up", "C57 model explanations (SHAP)")

    n.step("Train and register the champion: its model card gains a global explanation")
    version = ensure_champion(ctx, n)
    card = _model_card(ctx, version)
    section = card[card.index("## Global explanation") : card.index("## Quality gate")].strip().splitlines()
    for line in section[2:12]:
        n.say(line)
    n.why("mean |contribution| to the predicted class over the holdout: which features the decisions rest on")

    n.step("Explain one prediction through the real API")
    _explain_over_http(n, ctx, version)

    n.step("A random forest: SHAP's TreeExplainer, in probability space")
    raw = read_csv(ensure_raw_data(ctx, n))
    train = p.train.model_copy(update={"estimator": "random_forest", "hyperparams": {"n_estimators": 20}})
    forest = fit_and_evaluate(raw, p.model_copy(update={"train": train})).pipeline
    explainer = Explainer(forest)
    values = raw[features].to_numpy(dtype="float64")
    base, contributions = explainer.attributions(values)
    gap = np.abs(base[None, :] + contributions.sum(axis=1) - explainer.outputs(values)).max()
    n.ok(f"{len(values)} rows x {len(explainer.classes)} classes: base + sum = predict_proba within {gap:.1e}")
    n.say("the four largest of the eight contributions; the other four close the gap to the output")
    row = explainer.explain(np.array([[ROW[f] for f in features]]))[0]
    n.table(
        f"the forest predicts {row.explained_class} (probability)",
        ["model feature", "contribution"],
        _contribution_rows(
            dict(sorted(row.contributions.items(), key=lambda kv: -abs(kv[1]))[:4]), row.base_value, row.output_value
        ),
    )

    n.step("Over time: the served rows' explanation against the training-time one")
    model = load_version_model(ctx.settings, version)  # the champion, as the monitoring check loads it
    clean = generate_batch("clean", raw, p, rows=500, seed=51)
    stuck = clean.assign(petal_length=raw["petal_length"].mean(), petal_width=raw["petal_width"].mean())
    for name, window in (("clean traffic", clean), ("petal sensors stuck at the training mean", stuck)):
        shift = explanation_shift(model, raw, window, features, seed=p.monitoring.attribution_drift.seed)
        ref, cur = shift["reference"], shift["window"]
        verdict = n.bad if shift["shift"] > p.monitoring.attribution_drift.threshold else n.ok
        verdict(
            f"{name}: explanation shift {shift['shift']:.2f}; top input {shift['top_reference']} "
            f"{ref[shift['top_reference']]:.0%} -> {shift['top_window']} {cur[shift['top_window']]:.0%}"
        )
    n.why("reported inside the attribution_drift finding of `mlops-lab monitor`, beside permutation importance")
    n.code(
        "pipelines/explain.py::Explainer",
        "serving/explain_api.py::ExplainApi",
        "monitoring/explanation_drift.py::explanation_shift",
    )
