"""Behavioural model tests: does the model behave sensibly, not just score well?

Concept: behavioural testing (C40), after CheckList (Ribeiro et al., 2020). A held-out accuracy
number hides *how* a model gets its answers; three cheap probes catch broken models that a
single metric can miss:

- **Minimum functionality**: the most typical example of each class (its per-class median row)
  must be predicted as that class. A model that fails this is broken, whatever its accuracy.
- **Invariance**: measurement-sized noise must not flip confident predictions. A model that
  memorised exact values, or sits on a knife-edge, fails here.
- **Directional expectation**: domain knowledge as a test. From a class prototype, moving a
  decisive feature towards another class must raise that class's probability.

Every check returns a ``CheckResult`` with a readable detail (with numbers) and per-case rows,
so the quality gate (``quality_gate.py``) can block a model and the model card can show why.
The functions take any fitted classifier with ``predict_proba`` and ``classes_``; they never
train or load a model themselves.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from core.params import DirectionalSpec, GateParams, InvarianceParams

MAX_REPORTED_CASES = 20  # keep reports readable: the detail line carries the totals


class ProbabilisticClassifier(Protocol):
    """What the checks need from a model: scikit-learn's fitted-classifier interface."""

    classes_: Any

    def predict_proba(self, X: pd.DataFrame) -> Any: ...


@dataclass
class CheckResult:
    """Outcome of one model check, ready for gate decisions, MLflow tags and model cards."""

    name: str
    passed: bool
    detail: str
    cases: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _predict(model: ProbabilisticClassifier, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Predicted labels (as str) and their probability, from a single predict_proba call."""
    proba = np.asarray(model.predict_proba(X), dtype=float)
    classes = np.asarray(model.classes_).astype(str)
    return classes[proba.argmax(axis=1)], proba.max(axis=1)


def _proba_of(model: ProbabilisticClassifier, X: pd.DataFrame, label: str) -> np.ndarray:
    classes = [str(c) for c in model.classes_]
    if label not in classes:
        raise ValueError(f"class {label!r} is not one of the model's classes {classes}; check gate.directional")
    return np.asarray(model.predict_proba(X), dtype=float)[:, classes.index(label)]


def class_prototypes(X: pd.DataFrame, y: pd.Series) -> pd.DataFrame:
    """Per-class median feature row (index = class label): the most typical example of each class."""
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} rows but y has {len(y)}; pass features and labels of the same split")
    labels = pd.Series(np.asarray(y).astype(str), index=X.index, name="class")
    return X.groupby(labels).median()


def minimum_functionality(model: ProbabilisticClassifier, prototypes: pd.DataFrame) -> CheckResult:
    """Each class prototype must be predicted as its own class."""
    predicted, confidence = _predict(model, prototypes)
    cases = [
        {"class": str(cls), "predicted": str(pred), "confidence": round(float(conf), 4), "passed": str(cls) == pred}
        for cls, pred, conf in zip(prototypes.index, predicted, confidence, strict=True)
    ]
    wrong = [c for c in cases if not c["passed"]]
    detail = f"{len(cases) - len(wrong)}/{len(cases)} class prototypes predicted as their own class"
    if wrong:
        detail += "; wrong: " + ", ".join(f"{c['class']} -> {c['predicted']}" for c in wrong)
    return CheckResult("minimum_functionality", not wrong, detail, cases)


def invariance(model: ProbabilisticClassifier, X: pd.DataFrame, params: InvarianceParams) -> CheckResult:
    """Seeded Gaussian noise (noise × feature std) must not flip confident predictions."""
    rng = np.random.default_rng(params.seed)
    numeric = X.select_dtypes("number").columns
    scale = X[numeric].std().fillna(0.0).to_numpy() * params.noise
    noisy = X.copy()
    noisy[numeric] = X[numeric].to_numpy(dtype=float) + rng.normal(size=(len(X), len(numeric))) * scale

    before, confidence = _predict(model, X)
    after, _ = _predict(model, noisy)
    confident = confidence >= params.min_confidence
    flipped = confident & (before != after)
    n_confident, n_flipped = int(confident.sum()), int(flipped.sum())
    rate = n_flipped / n_confident if n_confident else 0.0
    passed = rate <= params.max_flip_rate
    detail = (
        f"{n_flipped}/{n_confident} predictions with confidence >= {params.min_confidence:g} flipped under "
        f"noise {params.noise:g} x std (flip rate {rate:.3f}, max {params.max_flip_rate:.3f})"
    )
    if n_confident == 0:
        detail += "; no prediction was confident enough to test"
    cases = [
        {"row": str(idx), "before": str(b), "after": str(a), "confidence": round(float(c), 4)}
        for idx, b, a, c in zip(X.index[flipped], before[flipped], after[flipped], confidence[flipped], strict=True)
    ][:MAX_REPORTED_CASES]
    return CheckResult("invariance", passed, detail, cases)


def directional(model: ProbabilisticClassifier, prototypes: pd.DataFrame, specs: list[DirectionalSpec]) -> CheckResult:
    """From each spec's ``from_class`` prototype, adding ``delta`` to ``feature`` must raise P(towards_class)."""
    if not specs:
        return CheckResult("directional", True, "not configured (gate.directional is empty): nothing to test")
    cases: list[dict[str, Any]] = []
    for spec in specs:
        if spec.from_class not in prototypes.index:
            raise ValueError(f"no prototype for class {spec.from_class!r}; known: {list(prototypes.index)}")
        if spec.feature not in prototypes.columns:
            raise ValueError(f"feature {spec.feature!r} is not a model input; known: {list(prototypes.columns)}")
        base = prototypes.loc[[spec.from_class]]
        moved = base.copy()
        moved[spec.feature] = moved[spec.feature] + spec.delta
        p_before = float(_proba_of(model, base, spec.towards_class)[0])
        p_after = float(_proba_of(model, moved, spec.towards_class)[0])
        cases.append(
            {
                "feature": spec.feature,
                "delta": spec.delta,
                "from_class": spec.from_class,
                "towards_class": spec.towards_class,
                "p_before": round(p_before, 6),
                "p_after": round(p_after, 6),
                "passed": p_after > p_before,  # strictly: a flat (saturated) response is not evidence
            }
        )
    wrong = [c for c in cases if not c["passed"]]
    detail = f"{len(cases) - len(wrong)}/{len(cases)} directional expectations held"
    if wrong:
        detail += "; failed: " + ", ".join(
            f"{c['feature']} {c['delta']:+g} from {c['from_class']}: "
            f"P({c['towards_class']}) {c['p_before']:.4f} -> {c['p_after']:.4f} (should rise)"
            for c in wrong
        )
    return CheckResult("directional", not wrong, detail, cases)


def run_behavioural_checks(
    model: ProbabilisticClassifier,
    X_train: pd.DataFrame,
    y_train: pd.Series,
    X_test: pd.DataFrame,
    gate: GateParams,
) -> list[CheckResult]:
    """All behavioural checks: prototypes come from training data, noise probes the held-out rows."""
    prototypes = class_prototypes(X_train, y_train)
    return [
        minimum_functionality(model, prototypes),
        invariance(model, X_test, gate.invariance),
        directional(model, prototypes, gate.directional),
    ]
