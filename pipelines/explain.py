"""Explanations per prediction: additive feature contributions that add up to the model's output.

Concept: model explanations (C57). For one row, each feature gets a contribution and the model gets a
base value, so that ``base + sum(contributions) == output`` for the explained class: an answer to
"why this class?" that can be checked with arithmetic. The pipeline (`pipelines.features`) is
derive -> impute -> scale -> classifier, and every explanation is computed in the classifier's own
input space, the scaled *model features*: the contract's inputs plus the derived ones. Derived
features are shown separately under their own names (``petal_length_x_petal_width``) in
``contributions``; ``by_input`` attributes them back to the inputs they are made of, each input of a
product or ratio taking half, so both views add up to the same output.

Which method, which output space:

- logistic regression: exact, no sampling. Contribution = coefficient x (scaled value - scaled
  training mean), and the scaled training mean is 0 (the scaler was fitted on the training rows), so
  it is coefficient x scaled value; base = intercept. Output space: the class's *margin* (its logit
  before the softmax, ``decision_function``), the space in which the model is additive.
- random forest: SHAP's TreeExplainer (exact for trees, path-dependent: no background needed).
  Output space: the class probability.
- anything else (SVC, KNN): SHAP's KernelExplainer on ``predict_proba`` against a small seeded
  background sample of training rows. With 8 model features it enumerates all 2^8 coalitions, so
  the values are the exact Shapley values for that background, and the cost is bounded by
  construction: at most ``2^features x background rows`` model evaluations per explained row.
  Output space: the class probability.

Pure: plain arrays and fitted scikit-learn objects in, plain data out. ``shap`` is imported inside
the functions that need it (it takes seconds to import).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

LINEAR, TREE, KERNEL = "linear", "tree", "kernel"
MARGIN, PROBABILITY = "margin", "probability"
BACKGROUND_ROWS = 20  # rows of training data the model-agnostic explainer compares with
MAX_COALITIONS = 2048  # KernelExplainer's budget per row; 2^8 = 256 model features' coalitions fit exactly


@dataclass(frozen=True)
class Explanation:
    """One row's explanation for one class: ``base_value + sum(contributions) == output_value``."""

    explained_class: str
    method: str  # linear | tree | kernel
    output: str  # margin (logistic regression) | probability
    base_value: float
    output_value: float  # the model's own output for the class, in the ``output`` space
    contributions: dict[str, float]  # per model feature; derived features under their own names
    by_input: dict[str, float]  # the same, derived features split equally between their inputs

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def method_for(estimator: Any) -> str:
    """The explanation method for a fitted final estimator."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    if isinstance(estimator, LogisticRegression):
        return LINEAR
    if isinstance(estimator, RandomForestClassifier):
        return TREE
    return KERNEL


def _parents(pipeline: Any) -> dict[str, tuple[str, ...]]:
    """Model feature -> the contract inputs it is made of (an input is its own parent)."""
    derive = pipeline.named_steps.get("derive")
    inputs = [str(n) for n in pipeline.feature_names_in_]
    parents: dict[str, tuple[str, ...]] = {name: (name,) for name in inputs}
    if derive is not None:
        for a, b in derive.products or []:
            parents[f"{a}_x_{b}"] = (a, b)
        for a, b in derive.ratios or []:
            parents[f"{a}_per_{b}"] = (a, b)
    return parents


class Explainer:
    """Explains one fitted pipeline; built once per model version, then called per row.

    Args:
        pipeline: the fitted derive -> impute -> scale -> classifier Pipeline (never the ONNX copy).
        background: training rows in contract column order, for the model-agnostic method only; a
            seeded sample of at most ``background_rows`` of them is kept. Without it (or for the
            linear and tree methods) the kernel method compares with the training mean.
    """

    def __init__(
        self, pipeline: Any, background: np.ndarray | None = None, *, seed: int = 0, background_rows: int = 0
    ) -> None:
        self.pipeline = pipeline
        self.prep, self.estimator = pipeline[:-1], pipeline[-1]
        self.inputs = [str(n) for n in pipeline.feature_names_in_]
        self.features = [str(n) for n in self.prep.get_feature_names_out()]
        self.parents = _parents(pipeline)
        self.classes = [str(c) for c in self.estimator.classes_]
        self.method = method_for(self.estimator)
        self.output = MARGIN if self.method == LINEAR else PROBABILITY
        self._background = self._pick_background(background, seed, background_rows or BACKGROUND_ROWS)
        self._shap: Any = None

    def _pick_background(self, background: np.ndarray | None, seed: int, rows: int) -> np.ndarray:
        if background is None or len(background) == 0:
            return np.zeros((1, len(self.features)))  # the scaled training mean
        if len(background) > rows:
            background = background[np.random.default_rng(seed).choice(len(background), rows, replace=False)]
        return self.transform(np.asarray(background, dtype="float64"))

    @property
    def background_size(self) -> int:
        return 0 if self.method != KERNEL else len(self._background)

    def transform(self, values: np.ndarray) -> np.ndarray:
        """Contract rows -> the classifier's scaled model features (derived ones included)."""
        return np.asarray(self.prep.transform(values), dtype="float64")

    def outputs(self, values: np.ndarray) -> np.ndarray:
        """The model's own output per row and class, in this explainer's output space."""
        scaled = self.transform(values)
        if self.method == LINEAR:
            return _margins(self.estimator, scaled)
        return np.asarray(self.estimator.predict_proba(scaled), dtype="float64")

    def attributions(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(base per class, contributions rows x model features x classes) for contract rows ``values``."""
        scaled = self.transform(values)
        if self.method == LINEAR:
            coef, intercept = _linear_parts(self.estimator)
            return intercept, scaled[:, :, None] * coef.T[None, :, :]
        explainer = self._explainer()
        if self.method == TREE:
            shap_values = explainer.shap_values(scaled, check_additivity=False)
        else:
            nsamples = min(2 ** len(self.features), MAX_COALITIONS)
            shap_values = explainer.shap_values(scaled, nsamples=nsamples, l1_reg=False, silent=True)
        return np.asarray(explainer.expected_value, dtype="float64").reshape(-1), _as_3d(shap_values)

    def _explainer(self) -> Any:
        if self._shap is None:
            import shap

            if self.method == TREE:
                self._shap = shap.TreeExplainer(self.estimator)
            else:
                self._shap = shap.KernelExplainer(self.estimator.predict_proba, self._background, link="identity")
        return self._shap

    def explain(self, values: np.ndarray, explained_class: str | None = None) -> list[Explanation]:
        """One explanation per row, for ``explained_class`` or else the row's predicted class."""
        base, contributions = self.attributions(values)
        outputs = self.outputs(values)
        predicted = np.asarray(self.pipeline.predict(values)).astype(str)
        answers = []
        for i in range(len(values)):
            name = explained_class if explained_class is not None else str(predicted[i])
            k = self.classes.index(name)
            row = contributions[i, :, k]
            answers.append(
                Explanation(
                    explained_class=name,
                    method=self.method,
                    output=self.output,
                    base_value=float(base[k]),
                    output_value=float(outputs[i, k]),
                    contributions=dict(zip(self.features, map(float, row), strict=True)),
                    by_input=self.by_input(row),
                )
            )
        return answers

    def by_input(self, row: np.ndarray) -> dict[str, float]:
        """Model-feature contributions attributed to the contract inputs (a derived one split equally)."""
        totals = dict.fromkeys(self.inputs, 0.0)
        for name, value in zip(self.features, row, strict=True):
            parents = self.parents.get(name, (name,))
            for parent in parents:
                totals[parent] += float(value) / len(parents)
        return totals

    def predicted_contributions(self, values: np.ndarray) -> np.ndarray:
        """Rows x model features: each row's contributions to its own predicted class."""
        _, contributions = self.attributions(values)
        predicted = np.asarray(self.pipeline.predict(values)).astype(str)
        return contributions[np.arange(len(values)), :, [self.classes.index(p) for p in predicted]]

    def global_importance(self, values: np.ndarray) -> dict[str, float]:
        """Mean |contribution| per model feature over ``values``, each row for its predicted class."""
        picked = self.predicted_contributions(values)
        return dict(zip(self.features, map(float, np.abs(picked).mean(axis=0)), strict=True))

    def global_explanation(self, values: np.ndarray) -> dict[str, Any]:
        """The model card's global explanation of ``values``: mean |contribution| per model feature and per input."""
        picked = self.predicted_contributions(values)
        by_input = np.array([list(self.by_input(row).values()) for row in picked])
        return {
            "method": self.method,
            "output": self.output,
            "rows": len(values),
            "background_rows": self.background_size,
            "importance": dict(zip(self.features, map(float, np.abs(picked).mean(axis=0)), strict=True)),
            "by_input": dict(zip(self.inputs, map(float, np.abs(by_input).mean(axis=0)), strict=True)),
        }


def _linear_parts(estimator: Any) -> tuple[np.ndarray, np.ndarray]:
    """(coef classes x features, intercept per class); a binary model's one row becomes two (-m, +m)."""
    coef, intercept = np.asarray(estimator.coef_, "float64"), np.asarray(estimator.intercept_, "float64")
    if coef.shape[0] == 1 and len(estimator.classes_) == 2:
        return np.vstack([-coef, coef]), np.concatenate([-intercept, intercept])
    return coef, intercept


def _margins(estimator: Any, scaled: np.ndarray) -> np.ndarray:
    coef, intercept = _linear_parts(estimator)
    return scaled @ coef.T + intercept


def _as_3d(shap_values: Any) -> np.ndarray:
    """SHAP's answer as rows x features x classes (older releases give a list per class)."""
    if isinstance(shap_values, list):
        return np.stack([np.asarray(v, "float64") for v in shap_values], axis=-1)
    return np.asarray(shap_values, dtype="float64")


GLOBAL_ROWS = 100  # rows a global explanation averages over at most (a seeded sample beyond that)


def global_explanation(
    pipeline: Any, background: np.ndarray, values: np.ndarray, seed: int, max_rows: int = GLOBAL_ROWS
) -> dict[str, Any]:
    """Mean |contribution| per feature over (a seeded sample of at most ``max_rows`` of) ``values``."""
    explainer = Explainer(pipeline, background, seed=seed)
    return explainer.global_explanation(sample_rows(values, max_rows, seed))


def importance_shares(importance: dict[str, float]) -> dict[str, float]:
    """Mean |contribution| per feature as shares of their total (all 0 when every one is 0)."""
    total = sum(importance.values())
    return {k: (v / total if total > 0 else 0.0) for k, v in importance.items()}


def sample_rows(values: np.ndarray, max_rows: int, seed: int) -> np.ndarray:
    """At most ``max_rows`` of ``values``, a seeded sample: global explanations cost per row."""
    if len(values) <= max_rows:
        return values
    return values[np.sort(np.random.default_rng(seed).choice(len(values), max_rows, replace=False))]
