"""Profile a CSV and write the params file of its data contract: your own dataset in one command.

Concept: data contracts (C06, C07). ``mlops-lab dataset init DATA.csv --target COLUMN`` reads the file
once and says what is in it (columns, types, classes, ranges, missing values, duplicates), then writes
a params file whose ``dataset`` section is the contract for that file: every numeric column a feature
with its observed range widened by a stated margin, the target's values as the classes. The sections
that name iris columns (derived features, directional tests) are left empty, with comments saying
what to fill in and why; everything else (training, gate, rollout, monitoring) is copied from the
project's params.yaml. Missing values are *refused* by the contract it writes (``allow_missing:
false``): the profile counts them, the first `validate` names them, and you decide (clean the file,
or let the model impute them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

# Ranges in the contract are the observed range widened by this share of its span on each side: new
# batches may reach a little beyond the file you profiled without being refused as invalid.
RANGE_MARGIN = 0.1


class ProfileError(ValueError):
    """The file cannot be a dataset of this project as it is; the message says what to change."""


@dataclass(frozen=True)
class ColumnProfile:
    name: str
    numeric: bool
    missing: int
    minimum: float | None = None
    maximum: float | None = None
    decimals: int = 0


@dataclass(frozen=True)
class DatasetProfile:
    """What one CSV holds, as the contract needs it."""

    path: Path
    target: str
    rows: int
    duplicates: int
    columns: list[ColumnProfile]
    classes: dict[str, int]
    notes: list[str] = field(default_factory=list)

    @property
    def features(self) -> list[ColumnProfile]:
        return [c for c in self.columns if c.name != self.target and c.numeric]

    @property
    def missing(self) -> dict[str, int]:
        return {c.name: c.missing for c in self.columns if c.missing}

    @property
    def decimals(self) -> int:
        return max((c.decimals for c in self.features), default=0)


def _decimals(text: pd.Series) -> int:
    """Digits after the decimal point in the file's own text (the precision the data was written with)."""
    found = text.dropna().astype(str).str.extract(r"\.(\d+)$", expand=False).dropna()
    return int(found.str.len().max()) if len(found) else 0


def profile_csv(path: Path, target: str) -> DatasetProfile:
    """Read ``path`` and profile it for a contract with ``target`` as the label.

    Raises:
        ProfileError: no such target column, a target of numbers (classes must be names), a text column
            besides the target (the contract takes numeric features only), or fewer than two classes.
    """
    from pipelines.data import load_data

    frame = load_data(path).frame
    text = pd.read_csv(path, dtype=str, keep_default_na=True)
    if target not in frame.columns:
        raise ProfileError(f"{path.name} has no column {target!r}; its columns are {list(map(str, frame.columns))}")
    labels = frame[target]
    if pd.api.types.is_numeric_dtype(labels):
        shown = ", ".join(map(str, sorted(labels.dropna().unique())[:5]))
        raise ProfileError(
            f"the target {target!r} holds numbers ({shown}): the contract needs class names; write names in the "
            f"file (e.g. class_0 for 0) so that a prediction reads as a class, not a number"
        )
    columns, text_columns = [], []
    for name in map(str, frame.columns):
        values = frame[name]
        numeric = name != target and pd.api.types.is_numeric_dtype(values)
        if name != target and not numeric:
            text_columns.append(name)
        columns.append(
            ColumnProfile(
                name=name,
                numeric=numeric,
                missing=int(values.isna().sum()),
                minimum=float(values.min()) if numeric and values.notna().any() else None,
                maximum=float(values.max()) if numeric and values.notna().any() else None,
                decimals=_decimals(text[name]) if numeric else 0,
            )
        )
    if text_columns:
        raise ProfileError(
            f"column(s) {text_columns} hold text: features must be numbers; drop them from the file (the contract "
            "expects exactly its features and the target) or encode them as numbers"
        )
    classes = {str(k): int(v) for k, v in labels.dropna().astype(str).value_counts().sort_index().items()}
    if len(classes) < 2:
        raise ProfileError(f"the target {target!r} has {len(classes)} class(es): a classifier needs at least two")
    notes = []
    if labels.isna().any():
        notes.append(f"{int(labels.isna().sum())} row(s) have no {target}: the contract refuses them")
    return DatasetProfile(
        path=path,
        target=target,
        rows=len(frame),
        duplicates=int(frame.duplicated().sum()),
        columns=columns,
        classes=classes,
        notes=notes,
    )


def contract_range(column: ColumnProfile, margin: float = RANGE_MARGIN) -> tuple[float, float]:
    """The observed range widened by ``margin`` of its span on each side; never below 0 for data that is not."""
    low, high = column.minimum or 0.0, column.maximum or 0.0
    pad = (high - low) * margin or abs(high) * margin or 1.0
    lo, hi = low - pad, high + pad
    if low >= 0 > lo:
        lo = 0.0
    digits = max(column.decimals, 0) + 1
    return round(lo, digits), round(hi, digits)


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "dataset"


def _dump(section: dict[str, Any]) -> str:
    return yaml.safe_dump(section, sort_keys=False, default_flow_style=None, width=110)


def _path_text(path: Path, project_dir: Path) -> str:
    try:
        return str(path.resolve().relative_to(project_dir.resolve()))
    except ValueError:
        return str(path.resolve())


def params_text(profile: DatasetProfile, name: str, base: dict[str, Any], project_dir: Path, holdout: Path) -> str:
    """The params file for ``profile``: the contract, emptied iris sections with what to fill in, the rest of base."""
    model = f"{slug(name)}-classifier"
    features = {c.name: dict(zip(("min", "max"), contract_range(c), strict=True)) for c in profile.features}
    missing = profile.missing
    dataset = {
        "name": name,
        "path": _path_text(profile.path, project_dir),
        "target": profile.target,
        "classes": list(profile.classes),
        "features": features,
        "allow_missing": False,
        "unique_rows": True,
        "row_count": {"min": 10, "max": 10_000_000},
        "decimals": profile.decimals,
    }
    missing_note = (
        f"# Your file has {sum(missing.values())} missing value(s) in {sorted(missing)}: this contract refuses them.\n"
        "# Clean the file, or set allow_missing: true and the model imputes them (the median of training).\n"
        if missing
        else "# Your file has no missing values.\n"
    )
    duplicates_note = f"# {profile.duplicates} duplicate row(s) in your file; unique_rows refuses them.\n"
    first = profile.features[0].name if profile.features else "a_feature"
    classes = list(profile.classes)
    gate = {**base.get("gate", {}), "directional": []}
    gate["holdout"] = {**gate.get("holdout", {}), "path": str(holdout)}
    gate["fairness"] = {**gate.get("fairness", {}), "positive_class": None}  # None: the last class (iris names fail)
    batches = {
        **base.get("batches", {}),
        "covariate_shift": {"features": [c.name for c in profile.features[:2]], "shift_std": 1.5},
        "prior_shift": {"weights": None},
        "concept_shift": {"swap": classes[:2]},
    }
    rest = {
        k: v for k, v in base.items() if k not in ("dataset", "ingest", "features", "gate", "batches", "model_name")
    }
    return "".join(
        [
            f"# Params for {name}: by `mlops-lab dataset init {profile.path.name} --target {profile.target}`.\n",
            "# Switch to it with `mlops-lab dataset use <this file>`; `mlops-lab dataset show` says what is active.\n",
            "# Review it like code: the `dataset` section is the data contract every batch is validated against.\n\n",
            "# The registered model's name for this dataset (MLOPS_MODEL_NAME wins if set).\n",
            f"model_name: {model}\n",
            "\n# The data contract. Ranges: the observed range of each feature widened by "
            f"{RANGE_MARGIN:.0%} of its span on each side\n",
            "# (never below 0 for data that is not), so new batches may reach a little beyond your file. Add\n",
            "# `mean: [low, high]` to a feature to catch unit mix-ups (millimetres sent as centimetres).\n",
            missing_note,
            duplicates_note,
            "# group_column: name an optional column (a site, a source) to get slice metrics per group.\n",
            _dump({"dataset": dataset}),
            "\n# `mlops-lab ingest` rebuilds the iris (or wine) file from scikit-learn; your CSV is not ingested.\n",
            _dump({"ingest": base.get("ingest", {"source": "sklearn-iris"})}),
            "\n# Derived features computed inside the model (so serving cannot skew): pairs of your feature names.\n",
            "# Empty: the iris ones named iris columns. Add e.g. products: [[a, b]] (a * b) or\n",
            "# ratios: [[a, b]] (a / b) when a combination means something in your domain.\n",
            _dump({"features": {"products": [], "ratios": []}}),
            "\n# gate.directional is empty: each test says that moving a decisive feature away from one class's\n",
            "# prototype must raise the probability of another class; only you know which features decide what,\n",
            f"# e.g. {{feature: {first}, from_class: {classes[0]}, towards_class: {classes[1]}, "
            "delta: <a step in its unit>}.\n",
            "# The holdout (rows no model trains on) is drawn from your file at the first `train` and kept.\n",
            _dump({"gate": gate}),
            "\n# Synthetic batches (`mlops-lab generate-batch`): shifts on your first features and classes.\n",
            _dump({"batches": batches}),
            "\n# Copied from the project's params.yaml: training, traffic, rollout and monitoring knobs.\n",
            _dump(rest),
        ]
    )
