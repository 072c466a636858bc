"""Params checked as a whole: every problem of a parameters file, in one readable list.

Concept: configuration as code (C07, C48). A params file is one contract: its sections name the
dataset's columns and classes again and again (derived features, directional tests, batch shifts,
the group column). Changing one section and not the others used to fail on the first key, one
traceback per attempt. Here the schema errors (pydantic's, every one of them) and the cross-references
are collected together, so a new dataset's params file is fixed in one round.

``cross_reference_problems`` reads the raw mapping defensively: it still reports unknown columns
when another part of the file has a type error. ``ParamsError`` carries the list; the CLI prints it
without a traceback.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


class ParamsFileNotFound(FileNotFoundError):
    """The params file named by the settings (MLOPS_PARAMS_FILE, `dataset use`, or the default) is not there."""


class ParamsError(ValueError):
    """A parameters file that does not hold together; ``problems`` lists every one found."""

    def __init__(self, path: Path | str, problems: Sequence[str]) -> None:
        self.path = Path(path)
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(
            f"invalid parameters in {self.path}: {len(self.problems)} problem(s), nothing was run:\n{lines}"
        )


def _section(raw: Mapping[str, Any], *keys: str) -> Any:
    node: Any = raw
    for key in keys:
        node = node.get(key) if isinstance(node, Mapping) else None
    return node


def _names(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else []


def cross_reference_problems(raw: Mapping[str, Any]) -> list[str]:
    """Every place a section names a column or class the ``dataset`` section does not define.

    Checked: derived features (``features.products/ratios``), directional tests (``gate.directional``),
    the slice column (``dataset.group_column``), the batch shifts (``batches.*``) and the dataset's
    own consistency (target not a feature, classes unique).
    """
    dataset = _section(raw, "dataset")
    if not isinstance(dataset, Mapping):
        return []  # the schema error ("dataset: field required") says it
    features = dataset.get("features")
    known = {str(k) for k in features} if isinstance(features, Mapping) else set()
    classes = _names(dataset.get("classes"))
    target = dataset.get("target")
    problems: list[str] = []

    def unknown_columns(where: str, names: list[str]) -> None:
        if known and (missing := [n for n in names if n not in known]):
            problems.append(f"{where}: unknown column(s) {missing}; the features are {sorted(known)}")

    def unknown_classes(where: str, names: list[str]) -> None:
        if classes and (missing := [n for n in names if n not in classes]):
            problems.append(f"{where}: unknown class(es) {missing}; the classes are {classes}")

    if target is not None and str(target) in known:
        problems.append(f"dataset.target: {target!r} is also listed under dataset.features")
    if len(set(classes)) != len(classes):
        problems.append(f"dataset.classes: listed twice: {sorted({c for c in classes if classes.count(c) > 1})}")
    group = dataset.get("group_column")
    if group is not None and (str(group) in known or group == target):
        problems.append(f"dataset.group_column: {group!r} is a feature or the target; slices need a column of its own")
    for kind in ("products", "ratios"):
        for i, pair in enumerate(_section(raw, "features", kind) or []):
            unknown_columns(f"features.{kind}[{i}]", _names(pair))
    for i, spec in enumerate(_section(raw, "gate", "directional") or []):
        if isinstance(spec, Mapping):
            unknown_columns(f"gate.directional[{i}].feature", _names([spec.get("feature")]))
            unknown_classes(f"gate.directional[{i}]", _names([spec.get("from_class"), spec.get("towards_class")]))
    unknown_columns("batches.covariate_shift.features", _names(_section(raw, "batches", "covariate_shift", "features")))
    positive = _section(raw, "gate", "fairness", "positive_class")
    unknown_classes("gate.fairness.positive_class", _names([positive] if positive is not None else []))
    unknown_classes("batches.concept_shift.swap", _names(_section(raw, "batches", "concept_shift", "swap")))
    weights = _section(raw, "batches", "prior_shift", "weights")
    if isinstance(weights, list) and classes and len(weights) != len(classes):
        problems.append(
            f"batches.prior_shift.weights: {len(weights)} weight(s) for {len(classes)} classes (one per class)"
        )
    return problems + search_problems(raw)


# The hyperparameters a search may vary, per estimator: constructor arguments of the scikit-learn class
# (tests/unit/core/test_params_check.py checks each name against the class). Anything else is a typo.
SEARCHABLE: dict[str, frozenset[str]] = {
    "logistic_regression": frozenset({"C", "l1_ratio", "tol", "max_iter"}),
    "random_forest": frozenset(
        {"n_estimators", "max_depth", "min_samples_leaf", "min_samples_split", "max_features", "criterion"}
    ),
    "svc": frozenset({"C", "gamma", "kernel", "degree"}),
    "knn": frozenset({"n_neighbors", "weights", "p", "leaf_size"}),
}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _dimension_problems(where: str, spec: Mapping[str, Any]) -> list[str]:
    kind = spec.get("type", "float")
    low, high = _number(spec.get("low")), _number(spec.get("high"))
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            return [f"{where}: a categorical needs a non-empty list of choices"]
        if spec.get("low") is not None or spec.get("high") is not None or spec.get("log"):
            return [f"{where}: a categorical takes choices only, not low/high/log"]
        return []
    if kind not in ("float", "int"):
        return []  # the schema error names the allowed types
    if spec.get("choices") is not None:
        return [f"{where}: choices belong to a categorical; a {kind} takes low and high"]
    if low is None or high is None:
        return [f"{where}: a {kind} range needs numeric low and high"]
    problems = []
    if low >= high:
        problems.append(f"{where}: low ({low:g}) must be below high ({high:g})")
    if spec.get("log") and low <= 0:
        problems.append(f"{where}: a log range needs low > 0 (got {low:g})")
    if kind == "int" and not (low.is_integer() and high.is_integer()):
        problems.append(f"{where}: an int range needs whole-number bounds (got {low:g}..{high:g})")
    return problems


REPLACED_SWEEP = (
    "train.sweep: the grid sweep was replaced by a search (`mlops-lab train --search`); give ranges under "
    "train.search.space.<estimator> instead (see params.yaml)"
)


def search_problems(raw: Mapping[str, Any]) -> list[str]:
    """The search section: known estimators and hyperparameters, sound ranges, pruning that can prune.

    Checked only where the file has a ``train.search`` section (the defaults in core/params.py are sound).
    """
    problems: list[str] = []
    train = _section(raw, "train")
    if isinstance(train, Mapping) and "sweep" in train:
        problems.append(REPLACED_SWEEP)
    search = _section(raw, "train", "search")
    if not isinstance(search, Mapping):
        return problems
    space = search.get("space")
    estimator = _section(raw, "train", "estimator") or "logistic_regression"
    if isinstance(space, Mapping):
        for name, dims in space.items():
            where = f"train.search.space.{name}"
            if name not in SEARCHABLE:
                problems.append(f"{where}: unknown estimator; the estimators are {sorted(SEARCHABLE)}")
                continue
            if not isinstance(dims, Mapping) or not dims:
                problems.append(f"{where}: give at least one hyperparameter range")
                continue
            for hp, spec in dims.items():
                if hp not in SEARCHABLE[name]:
                    problems.append(
                        f"{where}.{hp}: not a hyperparameter the search may vary for {name}; "
                        f"use one of {sorted(SEARCHABLE[name])}"
                    )
                elif isinstance(spec, Mapping):
                    problems.extend(_dimension_problems(f"{where}.{hp}", spec))
        if estimator in SEARCHABLE and estimator not in space:
            problems.append(
                f"train.search.space: no space for the configured estimator {estimator!r} "
                f"(spaces given: {sorted(map(str, space))})"
            )
    folds, min_folds = _section(raw, "train", "cv_folds"), search.get("min_folds")
    if search.get("pruning", True) and isinstance(folds, int) and isinstance(min_folds, int) and min_folds >= folds:
        problems.append(
            f"train.search.min_folds: {min_folds} is not below train.cv_folds ({folds}), so pruning could never "
            "stop a trial early; lower it or set pruning: false"
        )
    return problems


def schema_problems(err: Any) -> list[str]:
    """pydantic's ValidationError as lines ``where: what`` (every error, not only the first)."""
    lines = []
    for e in err.errors():
        where = ".".join(str(part) for part in e.get("loc", ())) or "(file)"
        message = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        lines.append(f"{where}: {message}")
    return lines
