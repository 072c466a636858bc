"""Offline evaluation on the held-out test set.

Concept: offline evaluation (C10). Metrics are computed once, here, from plain arrays, and the
same numbers feed MLflow, the quality gate, the model card and ``dvc metrics``. Per-class metrics
and the confusion matrix show *where* a model errs, which one accuracy number hides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm


@dataclass(frozen=True)
class Evaluation:
    """Held-out metrics of one fitted model."""

    metrics: dict[str, float]
    per_class: dict[str, dict[str, float]]
    classes: list[str]
    confusion: list[list[int]]
    predictions: list[str] = field(repr=False)

    def flat_metrics(self, prefix: str = "test_") -> dict[str, float]:
        """Metrics as MLflow keys: test_accuracy, test_recall_setosa, ..."""
        out = {f"{prefix}{k}": v for k, v in self.metrics.items()}
        for cls, vals in self.per_class.items():
            out.update({f"{prefix}{name}_{cls}": v for name, v in vals.items() if name != "support"})
        return out


def evaluate_model(model: Any, X: pd.DataFrame, y: pd.Series, classes: list[str]) -> Evaluation:
    """Score a fitted classifier on held-out rows."""
    y_pred = np.asarray(model.predict(X)).astype(str)
    proba = model.predict_proba(X)
    y_true = np.asarray(y).astype(str)
    model_classes = [str(c) for c in model.classes_]
    report = skm.classification_report(y_true, y_pred, labels=classes, output_dict=True, zero_division=0)
    per_class = {
        cls: {
            "precision": float(report[cls]["precision"]),
            "recall": float(report[cls]["recall"]),
            "f1": float(report[cls]["f1-score"]),
            "support": float(report[cls]["support"]),
        }
        for cls in classes
    }
    metrics = {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "f1_macro": float(skm.f1_score(y_true, y_pred, labels=classes, average="macro", zero_division=0)),
        "log_loss": float(skm.log_loss(y_true, proba, labels=model_classes)),
        "n_rows": float(len(y_true)),
    }
    confusion = skm.confusion_matrix(y_true, y_pred, labels=classes).tolist()
    return Evaluation(metrics, per_class, list(classes), confusion, y_pred.tolist())


def confusion_figure(evaluation: Evaluation, path: str | Path) -> Path:
    """Save the confusion matrix as a PNG (headless matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    skm.ConfusionMatrixDisplay(np.asarray(evaluation.confusion), display_labels=evaluation.classes).plot(
        ax=ax, colorbar=False, cmap="Blues"
    )
    ax.set_title(f"accuracy {evaluation.metrics['accuracy']:.3f}")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def confusion_rows(y_true: pd.Series, predictions: list[str]) -> list[dict[str, str]]:
    """Rows of (actual, predicted) for DVC's confusion-matrix plot template."""
    return [{"actual": str(a), "predicted": str(p)} for a, p in zip(y_true, predictions, strict=True)]
