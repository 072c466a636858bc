"""Explanation drift: do the SHAP-style contributions on production rows still look like the training-time ones?

Concept: model explanations over time (C57), beside feature-attribution drift (C35). The model card's global
explanation is the mean |contribution| per input on held-out rows (`pipelines.explain`). Here the same
figure is computed with the champion on its reference (the data it was trained on) and on the window of
served rows, each side normalised to shares, and compared as the attribution check compares its
permutation-importance shares: half the L1 distance (0 = the same features carry the decisions, 1 =
entirely different ones) and Spearman's rank correlation.

It is reported inside the ``attribution_drift`` finding (``details["explanations"]`` and one clause of its
summary), where people already look for "has the model changed its reasons?"; it does not change that
finding's status, which stays the permutation-importance verdict and its threshold. The two differ in
kind: permutation importance asks how much accuracy (or how many decisions) a feature is *worth* in this
traffic; mean |contribution| asks how far each feature *moves* the output for these rows, and needs no
labels. Rows are a seeded sample of at most ``GLOBAL_ROWS`` a side, so the cost is bounded (SHAP's kernel
method is the dear one: 2^8 coalitions x 20 background rows per row).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from monitoring.attribution_drift import attribution_change

if TYPE_CHECKING:
    import pandas as pd

    from core.findings import Finding


def explanation_shift(
    model: Any, reference: pd.DataFrame, window: pd.DataFrame, features: Sequence[str], seed: int
) -> dict[str, Any]:
    """Mean |contribution| shares per input on the reference and on the window, and how far apart they are."""
    from pipelines.explain import GLOBAL_ROWS, Explainer, importance_shares, sample_rows

    columns = list(features)
    background = reference[columns].to_numpy(dtype="float64")
    explainer = Explainer(model, background, seed=seed)
    sides = {}
    for name, frame in (("reference", reference), ("window", window)):
        values = sample_rows(frame[columns].dropna().to_numpy(dtype="float64"), GLOBAL_ROWS, seed)
        sides[name] = (explainer.global_explanation(values), len(values))
    ref = importance_shares(sides["reference"][0]["by_input"])
    cur = importance_shares(sides["window"][0]["by_input"])
    shift, rho = attribution_change(ref, cur)
    return {
        "method": explainer.method,
        "output": explainer.output,
        "reference_rows": sides["reference"][1],
        "window_rows": sides["window"][1],
        "reference": ref,
        "window": cur,
        "shift": shift,
        "spearman": rho,
        "top_reference": max(ref, key=ref.__getitem__),
        "top_window": max(cur, key=cur.__getitem__),
    }


def with_explanations(
    finding: Finding, model: Any, reference: pd.DataFrame, window: pd.DataFrame, features: Sequence[str], seed: int
) -> Finding:
    """The attribution finding with the explanation comparison added; its status is left as it was."""
    from dataclasses import replace

    if not len(window) or finding.rows == 0:
        return finding
    try:
        shift = explanation_shift(model, reference, window, features, seed)
    except (ValueError, KeyError, RuntimeError, TypeError) as err:  # reported, never hides the attribution verdict
        return replace(finding, details={**finding.details, "explanations": {"error": f"{type(err).__name__}: {err}"}})
    ref, cur = shift["reference"], shift["window"]
    top_ref, top_cur = shift["top_reference"], shift["top_window"]
    clause = (
        f"; explanation shift {shift['shift']:.2f} (mean |contribution| shares, top {top_ref} "
        f"{ref[top_ref]:.0%} -> {top_cur} {cur[top_cur]:.0%})"
    )
    return replace(finding, summary=finding.summary + clause, details={**finding.details, "explanations": shift})
