"""Model cards: one human-readable page per registered model version.

Concept: governance (C16). A model card (Mitchell et al., 2019) says what a model is for, what it
must not be used for, what data made it, how well it does overall and per slice, which checks it
passed and exactly where it came from. Reviewers approve a version by reading its card, so the card
is rendered from the same numbers the quality gate saw and is stored next to the version in the
registry (``pipelines/registry.py`` logs it as ``model_card.md``).

Rendering is a pure function of plain data: training fills a ``ModelCardInfo``, this module only
formats it, so the card is unit-testable without MLflow. The version number is only known after
registration, so a card rendered before it carries ``VERSION_PENDING``, which the registry replaces.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.params import DatasetConfig

VERSION_PENDING = "(pending registration)"  # replaced by the version number when registered
NOT_REGISTERED = "(not registered: refused by the quality gate)"  # what a refused candidate's card says instead


@dataclass(frozen=True)
class ModelCardInfo:
    """Everything a model card shows, as plain data (dicts and lists, no library objects)."""

    model_name: str
    version: str | None  # None before registration: rendered as VERSION_PENDING
    created: str  # ISO timestamp
    dataset_name: str
    target: str
    classes: list[str]
    feature_ranges: dict[str, tuple[float, float]]  # feature -> (valid min, valid max)
    data_path: str
    data_md5: str
    data_rows: int
    params: dict[str, Any]
    test_metrics: dict[str, float]
    cv_metrics: dict[str, float] = field(default_factory=dict)
    holdout_metrics: dict[str, float] = field(default_factory=dict)  # on the gate's holdout (never trained on)
    per_class_metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # class -> metric -> value
    confusion: list[list[int]] = field(default_factory=list)  # test split: rows actual, columns predicted (classes)
    slice_metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # slice -> metric -> value
    gate: dict[str, Any] | None = None  # {"passed": bool, "reasons": [...], "checks": {...} or [...]}
    run_id: str = ""
    git_sha: str | None = None
    params_hash: str | None = None
    library_versions: dict[str, str] = field(default_factory=dict)
    onnx: dict[str, Any] | None = None  # `OnnxOutcome.to_dict()`: status, reason, opset, parity, variants
    fairness: dict[str, Any] | None = None  # `FairnessReport.to_dict()` on the test rows; None: not judged
    explanation: dict[str, Any] | None = None  # `pipelines.explain.global_explanation` on the holdout, or {"error"}


def dataset_fields(cfg: DatasetConfig) -> dict[str, Any]:
    """The card fields that come from the data contract, ready for ``ModelCardInfo(**...)``."""
    return {
        "dataset_name": cfg.name,
        "target": cfg.target,
        "classes": list(cfg.classes),
        "feature_ranges": {name: (spec.min, spec.max) for name, spec in cfg.features.items()},
    }


def _fmt(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value).replace("|", "\\|")


def _table(header: list[str], rows: list[list[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return lines


def _metric_table(first: str, metrics: dict[str, dict[str, float]]) -> list[str]:
    columns = list(dict.fromkeys(k for row in metrics.values() for k in row))
    return _table([first, *columns], [[name, *(row.get(c, "") for c in columns)] for name, row in metrics.items()])


def _confusion_table(classes: list[str], confusion: list[list[int]]) -> list[str]:
    """Rows are the actual class, columns the predicted one: the diagonal is what the model got right."""
    return _table(["actual \\ predicted", *classes], [[cls, *row] for cls, row in zip(classes, confusion, strict=True)])


def _gate_lines(gate: dict[str, Any] | None) -> list[str]:
    if gate is None:
        return ["Not evaluated."]
    passed = gate.get("passed")
    lines = [f"**Result:** {'PASSED' if passed else 'FAILED' if passed is False else 'unknown'}"]
    reasons = gate.get("reasons") or []
    if reasons:
        lines += ["", "Reasons:", *(f"- {r}" for r in reasons)]
    comparisons = gate.get("comparisons") or {}
    lines += _holdout_lines(comparisons)
    metric = comparisons.get("metric", "metric")
    compared = [
        [f"{metric} vs {k}", *_check_row(v)] for k, v in comparisons.items() if isinstance(v, dict) and k != "holdout"
    ]
    if compared:  # the comparisons apart from the checks, so "4/4 checks passed" sits above four check rows
        lines += ["", *_table(["comparison", "passed", "detail"], compared)]
    checks = gate.get("checks") or {}
    if isinstance(checks, dict):
        rows = [[name, *_check_row(value)] for name, value in checks.items()]
    else:
        rows = [[c.get("name", "?"), *_check_row(c)] for c in checks]
    rows += [[f"{c.get('name', '?')} (advisory)", *_check_row(c)] for c in gate.get("advisory") or []]
    if rows:
        lines += ["", *_table(["check", "passed", "detail"], rows)]
    return lines


def _holdout_lines(comparisons: dict[str, Any]) -> list[str]:
    """The holdout, the paired comparison's counts and what the holdout can resolve."""
    holdout = comparisons.get("holdout")
    if not isinstance(holdout, dict):
        return []
    lines = ["", f"Holdout: {holdout.get('rows')} rows never trained on, md5 `{holdout.get('md5')}`."]
    champion = comparisons.get("champion")
    if isinstance(champion, dict) and "b_champion_only" in champion:
        res = champion.get("resolution") or {}
        lines.append(
            f"Paired with the champion ({champion.get('test')}, {champion.get('mode')}): "
            f"b = {champion['b_champion_only']} rows only the champion got right, "
            f"c = {champion.get('c_candidate_only')} only this model, difference {_fmt(champion.get('difference'))}, "
            f"p = {_fmt(champion.get('p_value'))} vs alpha {_fmt(champion.get('alpha'))}."
        )
        if res:
            lines.append(
                f"Resolution: one row is {_fmt(res.get('one_row'))}; a rejection needs at least "
                f"{res.get('min_rows_against')} rows against the candidate, a drop of at least "
                f"{_fmt(res.get('min_detectable_drop'))}. Smaller differences cannot be told apart on this holdout."
            )
    elif "champion" not in comparisons:
        lines.append("First model: no champion to compare with, floor and checks only; it becomes champion.")
    return lines


_NOT_IN_TABLE = ("name", "passed", "cases", "resolution")


def _check_row(value: object) -> list[object]:
    if isinstance(value, dict):
        extra = ", ".join(f"{k} {_fmt(v)}" for k, v in value.items() if k not in _NOT_IN_TABLE)
        return [value.get("passed", ""), value.get("detail", extra)]
    return [value, ""]


def _variant_cell(key: str, value: object) -> object:
    """Probability differences span 1e-16 to 1e-1: scientific notation, not four decimals."""
    return f"{value:.2g}" if key == "max_abs_diff" and isinstance(value, float) else value


def _onnx_lines(onnx: dict[str, Any]) -> list[str]:
    """Whether this version carries an ONNX file, why, the parity figures and the quantised variants."""
    status = onnx.get("status", "unknown")
    served = "yes: may be served by ONNX Runtime" if status == "passed" else "no: served by scikit-learn only"
    lines = [f"- **Status:** {status} ({served})", f"- **Why:** {onnx.get('reason', '')}"]
    if onnx.get("opset") is not None:
        converters = ", ".join(f"{k} {v}" for k, v in sorted((onnx.get("converters") or {}).items()))
        lines += [f"- **Opset:** ai.onnx {onnx['opset']}", f"- **Converters:** {converters}"]
        lines.append(f"- **Size:** {onnx.get('size_bytes')} bytes")
    parity = onnx.get("parity")
    if isinstance(parity, dict):
        sources = ", ".join(f"{k} {v}" for k, v in (parity.get("rows_by_source") or {}).items())
        lines.append(
            f"- **Parity:** {parity.get('rows_checked')} rows ({sources}); {parity.get('class_mismatches')} class "
            f"mismatches; max abs probability difference {parity.get('max_abs_diff'):.3g} "
            f"(tolerance {parity.get('tolerance'):g})"
        )
    variants = onnx.get("variants") or []
    if variants:
        header = [
            "variant",
            "size bytes",
            "size vs served",
            "holdout accuracy",
            "accuracy delta",
            "max abs diff",
            "note",
        ]
        keys = ("name", "size_bytes", "size_ratio", "accuracy", "accuracy_delta", "max_abs_diff", "note")
        rows = [["-" if v.get(k) is None else _variant_cell(k, v[k]) for k in keys] for v in variants]
        lines += ["", "Edge variants (reported, never served; the served file is the float64 one above):", ""]
        lines += _table(header, rows)
    return lines


def _fairness_lines(info: ModelCardInfo) -> list[str]:
    """The fairness figures the gate judged, or why nothing was judged (the gate's own words)."""
    from pipelines.fairness import fairness_markdown

    checks = (info.gate or {}).get("checks") or []
    check = next((c for c in checks if isinstance(c, dict) and c.get("name") == "fairness"), None)
    verdict = [] if check is None else [f"Gate check: {'pass' if check.get('passed') else 'FAIL'} - {check['detail']}"]
    if info.fairness is None:
        return verdict or ["Not judged: the gate ran no fairness check."]
    return [*verdict, "", *fairness_markdown(info.fairness)] if verdict else fairness_markdown(info.fairness)


def _explanation_lines(explanation: dict[str, Any]) -> list[str]:
    """Mean |contribution| per feature on the holdout: which features this model's decisions rest on."""
    if "error" in explanation:
        return [f"Not computed: {explanation['error']}"]
    space = "margin (logit)" if explanation.get("output") == "margin" else "probability"
    background = explanation.get("background_rows") or 0
    lines = [
        f"Mean absolute contribution to the predicted class over {explanation.get('rows')} holdout rows "
        f"({explanation.get('method')} method, {space} space"
        + (f", {background} background rows" if background else "")
        + "). Derived features are listed under their own names; `by input` splits each one equally between "
        "the two inputs it is made of (`POST /v1/explain` gives the same per row).",
        "",
    ]
    importance, by_input = explanation.get("importance") or {}, explanation.get("by_input") or {}
    ranked = sorted(importance.items(), key=lambda kv: -kv[1])
    lines += _table(["model feature", "mean abs contribution"], [[k, v] for k, v in ranked])
    if by_input:
        lines += ["", *_table(["input", "mean abs contribution (by input)"], [[k, v] for k, v in by_input.items()])]
    return lines


def render_model_card(info: ModelCardInfo) -> str:
    """Render the model card as Markdown."""
    version = info.version or VERSION_PENDING
    ranges = ", ".join(f"{f} in [{lo}, {hi}]" for f, (lo, hi) in info.feature_ranges.items())
    lines = [
        f"# Model card: {info.model_name} version {version}",
        "",
        f"- **Model:** {info.model_name}",
        f"- **Version:** {version}",
        f"- **Created:** {info.created}",
        "",
        "## Intended use and limits",
        "",
        f"Classifies one {info.dataset_name} measurement into `{info.target}`: {', '.join(info.classes)}.",
        f"Valid input ranges (the data contract): {ranges}.",
        "Out of scope: inputs outside these ranges (the model never saw them; data validation flags them), "
        "classes not listed here, and populations unlike the training data.",
        "",
        "## Training data",
        "",
        f"- **Path:** `{info.data_path}`",
        f"- **MD5:** `{info.data_md5}`",
        f"- **Rows:** {info.data_rows}",
        "",
        "## Parameters",
        "",
        *_table(["parameter", "value"], [[k, str(v)] for k, v in info.params.items()]),  # as given, unrounded
        "",
        "## Metrics",
        "",
        *_table(
            ["metric", "value"],
            [[f"test {k}", v] for k, v in info.test_metrics.items()]
            + [[f"holdout {k}", v] for k, v in info.holdout_metrics.items()]
            + [[f"cv {k.removeprefix('cv_')}", v] for k, v in info.cv_metrics.items()],
        ),
        "",
    ]
    if info.per_class_metrics:
        lines += ["### Per class", "", *_metric_table("class", info.per_class_metrics), ""]
    if info.confusion:
        lines += ["### Confusion matrix (test split)", "", *_confusion_table(info.classes, info.confusion), ""]
    if info.slice_metrics:
        lines += ["### Per slice", "", *_metric_table("slice", info.slice_metrics), ""]
    if info.explanation is not None:
        lines += ["## Global explanation", "", *_explanation_lines(info.explanation), ""]
    lines += ["## Quality gate", "", *_gate_lines(info.gate), ""]
    lines += ["## Fairness (test split, by group)", "", *_fairness_lines(info), ""]
    if info.onnx is not None:
        lines += ["## ONNX", "", *_onnx_lines(info.onnx), ""]
    lines += [
        "## Lineage",
        "",
        f"- **Run id:** `{info.run_id or 'unknown'}`",
        f"- **Git sha:** `{info.git_sha or 'unknown'}`",
        f"- **Params hash:** `{info.params_hash or 'unknown'}`",
        "",
        "## Library versions",
        "",
        *_table(["library", "version"], [[k, v] for k, v in info.library_versions.items()]),
        "",
    ]
    return "\n".join(lines)
