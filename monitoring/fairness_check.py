"""Fairness on labelled production rows: the gate's metrics, recomputed where the model now works (C58).

The gate judged a candidate's fairness on its test split; production can drift apart by group (a new
instrument at one site, a population change). This check takes the labelled window (predictions with
a feedback label) whose request named its group -- the ``dataset.group_column`` field of a /v1/predict
row, logged as ``predictions.sensitive_group`` and never given to the model -- and computes the same
fairlearn figures as the gate (pipelines/fairness.py), for the same positive class, against the same
bound. Rows without a group, and groups under ``gate.fairness.min_group_size`` rows, are left out;
without two judged groups the finding is ``inconclusive``, never "fair".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.findings import Finding
from pipelines.fairness import fairness_report, positive_class_of

if TYPE_CHECKING:
    import pandas as pd

    from core.params import Params


GROUP = "sensitive_group"  # the prediction log's column holding each row's group


def check_fairness(labelled: pd.DataFrame, params: Params, champion: str | None = None) -> Finding:
    """Equalized-odds difference of "predicted positive class" across groups in the labelled window.

    ``labelled``: `serving.log_reader.labelled_window`'s frame (the groups in its ``sensitive_group`` column).
    """
    cfg, column = params.gate.fairness, params.dataset.group_column
    bound = cfg.max_equalized_odds_difference
    if column is None:
        return Finding("fairness", "inconclusive", None, bound, "no dataset.group_column: no groups to compare")
    if GROUP not in labelled or labelled.empty or labelled[GROUP].isna().all():
        return Finding(
            "fairness", "inconclusive", None, bound,
            f"no labelled rows carry a {column!r} (send it with each /v1/predict row to judge fairness in production)",
        )  # fmt: skip
    rows = labelled[labelled[GROUP].notna()]
    if champion is not None and "model_version" in rows:  # the champion's answers only, like prediction drift
        rows = rows[rows["model_version"].astype(str) == champion]
    rows = rows.tail(params.monitoring.window)
    positive = positive_class_of(cfg, list(params.dataset.classes))
    try:
        report = fairness_report(rows["label"], rows["prediction"], rows[GROUP], positive, column, cfg.min_group_size)
    except ValueError as err:
        return Finding("fairness", "inconclusive", None, bound, f"{len(rows)} labelled rows with a group: {err}")
    eod = report.equalized_odds_difference
    fired = eod > bound + 1e-9
    summary = (
        f"equalized-odds difference {eod:.3f} for predicted {positive!r} across {column} "
        f"({'over' if fired else 'within'} {bound:.3f}; demographic parity difference "
        f"{report.demographic_parity_difference:.3f}; {len(rows)} labelled rows)"
    )
    return Finding(
        "fairness", "fired" if fired else "ok", eod, bound, summary, rows=len(rows), details=report.to_dict()
    )
