"""Demo ``drift``: the same reference against a clean, a covariate-shift, a prior-shift and a concept-shift window.

Concept: data drift (C32) and prediction drift (C33). Labels arrive late, inputs and answers at once,
so the first two monitoring checks compare what the model *sees* (every feature, Evidently's
per-column tests, dataset drift when half the features moved) and what it *answers* (predicted class
shares and confidence, scipy) with the reference. Four windows of ``monitoring.window`` rows from the
batch generator show what each check can and cannot see; the HTML report is what a person opens.

The model is the champion when the registry has one; otherwise a pipeline is fitted here on the
raw data (not registered), so the demo stays well under 30 s on a fresh state: Evidently's import
alone takes about 7 s. In production the current side comes from the prediction log
(``recent_predictions`` and ``predictions_from_log``); here the generated windows are scored directly.
The four windows' scores are drawn as if they were four monitoring runs (``reports/drift-demo/
findings-over-time.png``), the picture ``mlops-lab monitor`` draws from its history.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.demos.prep import display_path, ensure_raw_data
from monitoring.data_drift import data_drift
from monitoring.findings_plot import PICTURE, plot_findings
from monitoring.prediction_drift import prediction_drift, reference_predictions
from pipelines.batches import generate_batch
from pipelines.data import read_csv, split_features_target
from pipelines.features import build_pipeline
from pipelines.registry import current_aliases, load_alias_model

if TYPE_CHECKING:
    import pandas as pd

    from core.context import LabContext
    from core.findings import Finding
    from lab.narrate import Narrator

WINDOWS = {
    "clean": "drawn like the reference: both checks must stay quiet",
    "covariate-shift": "sepal features moved by 1.5 std, the labelling rule unchanged",
    "prior-shift": "class mix 70/20/10 instead of a third each",
    "concept-shift": "inputs as clean, versicolor and virginica labels swapped",
}
SEED = 1


def _model(ctx: LabContext, n: Narrator, raw: pd.DataFrame) -> Any:
    """The champion if one is registered, else a pipeline fitted here on the raw data."""
    settings = ctx.settings
    fresh = settings.tracking_uri is None and not (settings.state / "mlflow.db").exists()
    if not fresh:  # looking into a registry that does not exist yet would create one (seconds of migrations)
        version = current_aliases(settings).get("champion")
        model = load_alias_model(settings, "champion") if version else None
        if model is not None:
            n.say(f"model: the champion, version {version}")
            return model
    X, y = split_features_target(raw, ctx.params.dataset)
    n.say("model: no champion registered, so a pipeline is fitted here on the raw data (not registered)")
    return build_pipeline(ctx.params.features, ctx.params.train).fit(X, y)


def _verdict(n: Narrator, name: str, finding: Finding) -> None:
    say = n.bad if finding.fired else n.ok
    label = "FIRED" if finding.fired else finding.status
    say(f"{name}: {finding.check.replace('_', ' ')} {label} -- {finding.summary}")


def _cell(feature: dict[str, Any]) -> str:
    return f"{feature['score']:.3g}" + (" drift" if feature["drifted"] else "")


def run(n: Narrator, ctx: LabContext) -> None:

    mon, features = ctx.params.monitoring, ctx.params.dataset.feature_names
    n.title("Data drift and prediction drift: what moved, and does the model care?", "C32 data drift · C33 prediction")
    n.step("Reference: the raw data the model learns from, and the model's answers on it")
    raw = read_csv(ensure_raw_data(ctx, n))
    model = _model(ctx, n, raw)
    ref_pred = reference_predictions(model, raw, features)
    n.say(f"reference: {len(raw)} rows; window: {mon.window} rows per check (monitoring.window)")
    n.why("labels arrive late or never; inputs and answers are there at once, so they are watched first")

    n.step("A window too small to judge")
    tiny = generate_batch("clean", raw, ctx.params, rows=mon.min_rows // 2, seed=SEED)
    _verdict(n, f"{len(tiny)} rows", data_drift(raw, tiny, features, mon))
    n.why("a handful of rows can neither show drift nor rule it out: inconclusive, never a silent 'no drift'")

    n.step("Four windows against the reference (Evidently for inputs; its first call imports it, ~7 s)")
    findings: dict[str, tuple[Finding, Finding]] = {}
    for kind, what in WINDOWS.items():
        window = generate_batch(kind, raw, ctx.params, rows=mon.window, seed=SEED)
        out_dir = ctx.settings.reports_dir / "drift-demo" / kind
        data = data_drift(raw, window, features, mon, out_dir=out_dir)
        pred = prediction_drift(*ref_pred, *reference_predictions(model, window, features), mon)
        findings[kind] = (data, pred)
        n.say(f"{kind}: {what}")
    test = findings["clean"][0].details["features"][features[0]]
    rows = [[f, *(_cell(d.details["features"][f]) for d, _ in findings.values())] for f in features]
    title = f"{test['method']} per feature (threshold {test['threshold']:g}); 'drift' marks a drifted feature"
    n.table(title, ["feature", *WINDOWS], rows)
    for kind, (data, pred) in findings.items():
        _verdict(n, kind, data)
        _verdict(n, kind, pred)

    n.step("Why each verdict")
    n.why("clean: same distribution, so no feature test rejects and the answers look as before")
    moved, covariate = findings["covariate-shift"][0], findings["covariate-shift"][1]
    n.why(
        f"covariate shift: {', '.join(moved.details['drifted_features']) or 'no feature'} drifted, a share of "
        f"{moved.score:.2f} against {moved.threshold:g}, so the dataset verdict is {moved.status}; the answers "
        + (
            "barely move, because the model decides on the petals: inputs moved where the model does not look"
            if not covariate.fired
            else f"moved too ({', '.join(covariate.details['drifted'])}): the shift reached what the model uses"
        )
    )
    n.why("prior shift: a new class mix moves every feature's distribution and the predicted class shares")
    n.why(
        "concept shift: the same seed drew the very inputs of the clean window (identical scores) and only labels "
        "changed, so both checks stay silent, correctly; only labels reveal it (concept drift, C34)"
    )
    n.step("The reports")
    for kind, (data, _) in findings.items():
        n.say(f"{kind}: {display_path(ctx, Path(data.reports['html']))}")
    n.why("the HTML shows each feature's distributions side by side: where a person starts an investigation")
    picture = ctx.settings.reports_dir / "drift-demo" / PICTURE
    plot_findings([(kind, pair) for kind, pair in findings.items()], picture, "the four windows, one after another")
    n.say(f"scores against thresholds, window by window: {display_path(ctx, picture)}")
    n.say("false-alarm and detection rates over 30 seeds: docs/drift-detection.md")
    n.code(
        "monitoring/data_drift.py (data_drift, read_snapshot)",
        "monitoring/prediction_drift.py (prediction_drift, predictions_from_log)",
        "bench/drift_study.py (run_study)",
    )
