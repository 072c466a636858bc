"""An iris-style event history for the feature store: specimens measured over time, labelled later.

Concept: feature store and point-in-time joins (C62). A feature store only matters when features change
over time, so this module fabricates such a history from a seed. Each specimen (entity ``specimen_id``)
is a plant of one species, drawn from the per-class Gaussians fitted to the reference data, measured a
few times while it grows (sizes at 70-90 % of the adult's, plus measurement noise). After its last
young measurement someone asks for a prediction (``asked_at``); days later a lab confirms the species
and, at the same moment, records the adult's measurements. That last record is the trap: it is written
*after* the moment of the prediction and it carries what the lab learned. A join that takes each
specimen's latest values puts it in the training set (label leakage); a point-in-time join takes the
values as they were at ``asked_at``. Some specimens are still open (no label yet): they are the ones the
service scores by id.

numpy and pandas are imported inside the functions so importing this module costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from core.params import DatasetConfig

ENTITY_KEY = "specimen_id"
EVENT_TIME = "event_timestamp"
CREATED_TIME = "created_timestamp"
ASKED_AT = "event_timestamp"  # the label table's "as of" column: Feast joins on this name
LABELLED_AT = "labelled_at"
GROWTH = (0.7, 0.9)  # young sizes as a share of the adult's (the contract's batch means still hold)
NOISE_SD = 0.08  # measurement noise (cm) of a young measurement


@dataclass(frozen=True)
class History:
    """Measurements (one row per specimen and time) and labels (one row per labelled specimen)."""

    measurements: pd.DataFrame  # specimen_id, event_timestamp, created_timestamp, <features>
    labels: pd.DataFrame  # specimen_id, event_timestamp (= asked at), labelled_at, <target>
    open_ids: list[str]  # specimens measured but not labelled yet


def specimen_id(i: int) -> str:
    return f"sp-{i:05d}"


def generate_history(
    reference: pd.DataFrame,
    cfg: DatasetConfig,
    *,
    specimens: int = 400,
    open_share: float = 0.1,
    seed: int = 0,
    end: datetime | None = None,
) -> History:
    """A seeded history ending at ``end`` (default: now, UTC), over the ~30 days before it."""
    import numpy as np
    import pandas as pd

    from pipelines.batches import _fit_classes

    if specimens < 2:
        raise ValueError("specimens must be at least 2")
    if not 0.0 <= open_share < 1.0:
        raise ValueError("open_share must be in [0, 1)")
    end = (end or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    rng = np.random.default_rng(seed)
    fitted = _fit_classes(reference, cfg)
    classes = list(fitted)
    priors = np.array([fitted[c][2] for c in classes])
    names = cfg.feature_names
    scale = 10.0**cfg.decimals
    # The valid ranges shrunk to the measurement grid, so clipping stays on it (a 0.05 floor becomes 0.1).
    lows = np.ceil(np.array([s.min for s in cfg.features.values()]) * scale - 1e-9) / scale
    highs = np.floor(np.array([s.max for s in cfg.features.values()]) * scale + 1e-9) / scale

    def clean(values: np.ndarray) -> np.ndarray:
        return np.clip(np.round(values * scale) / scale, lows, highs)

    n_open = round(specimens * open_share)
    rows: list[dict[str, object]] = []
    labels: list[dict[str, object]] = []
    open_ids: list[str] = []
    for i in range(specimens):
        sid = specimen_id(i)
        species = classes[int(rng.choice(len(classes), p=priors / priors.sum()))]
        mean, cov, _ = fitted[species]
        adult = clean(rng.multivariate_normal(mean, cov, method="eigh"))
        is_open = i >= specimens - n_open
        visits = int(rng.integers(2, 5))
        # Open specimens were first measured 36-48 hours ago (their last visit is at least 6 hours old: at
        # most 3 gaps of at most 10 hours); the others 8-30 days ago, labelled at least 3 days before ``end``.
        back = timedelta(hours=float(rng.uniform(36, 48))) if is_open else timedelta(days=float(rng.uniform(8, 30)))
        start = end - back
        when = start
        for _ in range(visits):
            young = clean(adult * rng.uniform(*GROWTH) + rng.normal(0.0, NOISE_SD, size=len(names)))
            rows.append({ENTITY_KEY: sid, EVENT_TIME: when, CREATED_TIME: when, **dict(zip(names, young, strict=True))})
            when += timedelta(hours=float(rng.uniform(4, 10)))
        if is_open:
            open_ids.append(sid)
            continue
        asked_at = when
        labelled_at = asked_at + timedelta(days=float(rng.uniform(1, 3)))
        lab_record = dict(zip(names, adult, strict=True))  # written when the label is: the leak
        rows.append({ENTITY_KEY: sid, EVENT_TIME: labelled_at, CREATED_TIME: labelled_at, **lab_record})
        labels.append({ENTITY_KEY: sid, ASKED_AT: asked_at, LABELLED_AT: labelled_at, cfg.target: species})
    measurements = pd.DataFrame(rows)
    for col in (EVENT_TIME, CREATED_TIME):
        measurements[col] = pd.to_datetime(measurements[col], utc=True)
    label_frame = pd.DataFrame(labels, columns=[ENTITY_KEY, ASKED_AT, LABELLED_AT, cfg.target])
    for col in (ASKED_AT, LABELLED_AT):
        label_frame[col] = pd.to_datetime(label_frame[col], utc=True)
    return History(measurements=measurements, labels=label_frame, open_ids=open_ids)
