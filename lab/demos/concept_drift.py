"""Demo ``concept-drift``: the inputs stay the same, the right answers change, and only feedback notices.

Concept: concept drift / performance decay (C34) through the feedback loop (C38). Real traffic goes
through the serving API in process: single-row predictions, then each answer's label posted to
``/v1/feedback``, all joined in the prediction log. First clean traffic (its true labels), then a
concept-shift batch: the generator draws the very same inputs as a clean batch of that seed and
swaps two labels, as if the world renamed versicolor and virginica. The check compares the
champion's online accuracy over its newest labels with the test accuracy recorded in the registry.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from core.findings import save_findings
from lab.demos.prep import ensure_champion, ensure_raw_data
from lab.demos.traffic import running_service
from monitoring.concept_drift import check_concept_drift, offline_accuracy_from_registry
from pipelines.batches import generate_batch
from pipelines.data import read_csv
from serving.log_reader import labelled_window

if TYPE_CHECKING:
    import pandas as pd

    from core.context import LabContext
    from core.findings import Finding
    from lab.demos.traffic import DemoService
    from lab.narrate import Narrator

CLEAN_ROWS, SHIFTED_ROWS = 150, 150


def send_labelled(service: DemoService, batch: pd.DataFrame, prefix: str) -> int:
    """One request per row, then the batch's own label as feedback (whatever the truth has become)."""
    dataset = service.ctx.params.dataset
    answered = []
    rows = batch[dataset.feature_names].to_dict("records")
    for i, (row, label) in enumerate(zip(rows, batch[dataset.target].astype(str), strict=True)):
        response = service.client.post("/v1/predict", json=row, headers={"X-User-Id": f"{prefix}-{i:03d}"})
        if response.status_code == 200:
            answered.append((response.json(), label))
    service.flush()
    for answer, label in answered:
        service.label(answer, label)  # with the answer's feedback token
    return len(answered)


def _show(n: Narrator, finding: Finding) -> None:
    rows = [
        [
            f"v{v['version']}",
            v["labels"],
            f"{v['online']:.1%}",
            "-" if v["offline"] is None else f"{v['offline']:.1%}",
            " ".join(f"{b:.0%}" for b in v["blocks"]) or "-",
            v["status"],
        ]
        for v in finding.details["versions"].values()
    ]
    n.table(
        "online vs offline accuracy per model version",
        [
            "version",
            "labels",
            "online",
            "offline",
            f"blocks of {finding.details['min_labels']}, oldest first",
            "status",
        ],
        rows,
    )
    (n.bad if finding.fired else n.ok)(f"concept_drift {finding.status}: {finding.summary}")


def run(n: Narrator, ctx: LabContext) -> None:
    """Clean traffic keeps the promised accuracy; relabelled traffic with identical inputs breaks it."""
    p, cfg = ctx.params, ctx.params.monitoring.concept_drift
    features = p.dataset.feature_names
    n.title("Concept drift: same inputs, new truth, falling accuracy", "C34 concept drift · C38 feedback")
    n.step("The champion's promise: its accuracy on the held-out test split, from the registry")
    champion = ensure_champion(ctx, n)
    offline = offline_accuracy_from_registry(ctx.settings)
    n.say(f"champion v{champion}: offline test accuracy {offline.get(champion, float('nan')):.1%}")
    n.why(
        f"the check fires when online accuracy falls more than {cfg.max_accuracy_drop:.0%} below that, "
        f"judged on the newest {cfg.window} labels per version and only with at least {cfg.min_labels}"
    )

    with running_service(ctx) as service:
        service.route(strategy="canary", canary_weight=0.0)  # everyone on the champion: one version to judge
        if service.runtime.log is None:
            raise RuntimeError("the service has no prediction log: run this inside `with running_service(ctx)`")
        engine = service.runtime.log.engine
        reference = read_csv(ensure_raw_data(ctx))
        started = datetime.now(UTC)

        def check() -> Finding:
            service.flush()
            return check_concept_drift(labelled_window(engine, since=started), offline, cfg)

        n.step(f"{CLEAN_ROWS} clean requests, then their true labels as feedback")
        clean = generate_batch("clean", reference, p, rows=CLEAN_ROWS, seed=41)
        send_labelled(service, clean.head(30), "cd-early")
        _show(n, check())
        n.why("30 labels are too few to tell a bad day from bad luck: inconclusive, never a pass")
        send_labelled(service, clean.iloc[30:], "cd-clean")
        _show(n, check())

        n.step(f"{SHIFTED_ROWS} concept-shift requests: {' and '.join(p.batches.concept_shift.swap or [])} swapped")
        shifted = generate_batch("concept-shift", reference, p, rows=SHIFTED_ROWS, seed=42)
        same_draw = generate_batch("clean", reference, p, rows=SHIFTED_ROWS, seed=42)
        identical = shifted[features].equals(same_draw[features])
        (n.ok if identical else n.bad)(
            f"inputs identical to a clean batch of the same seed: {identical}, so a data-drift check compares "
            "the same distribution and stays quiet"
        )
        n.why("nothing about the inputs changed; only the mapping from inputs to labels did")
        send_labelled(service, shifted, "cd-shift")
        finding = check()
        _show(n, finding)
        n.why("the blocks show a step, not a slide: a relabelling happened at one moment, which points to a cause")

        save_findings(engine, [finding])
        n.say("latest finding saved to the shared database (monitor tables), where alerts and retraining read it")
    n.code(
        "monitoring/concept_drift.py::check_concept_drift",
        "monitoring/concept_drift.py::offline_accuracy_from_registry",
        "serving/log_reader.py::labelled_window",
        "pipelines/batches.py (concept-shift)",
    )
