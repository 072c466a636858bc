"""Labelled rows with a group column and a bias of known size, for the fairness demo and tests (C58).

The story: two sites measure flowers; site B (30 % of the rows by default) has an instrument that
reads petals short by ``shift_cm`` (petal length and width both), while the species labels stay true.
A model trained on both sites without knowing the site draws one boundary for all, so site B's
virginica flowers look like versicolor more often: site B gets a lower recall for virginica, a
measurable equalized-odds gap.
The rows come from the seeded clean-batch generator (a Gaussian per class fitted to the reference),
so the same seed and bias always give the same rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from core.params import Params

SITES = ("site-a", "site-b")
SHIFTED = ("petal_length", "petal_width")
DEFAULT_SHIFT_CM = 0.6  # the stated bias: site B's petals read 0.6 cm short
DEFAULT_SHARE_B = 0.3  # site B is the smaller site: the model learns site A's boundary


def biased_rows(
    reference: pd.DataFrame,
    params: Params,
    rows: int,
    seed: int,
    shift_cm: float = DEFAULT_SHIFT_CM,
    share_b: float = DEFAULT_SHARE_B,
) -> pd.DataFrame:
    """``rows`` labelled rows with ``dataset.group_column`` = site-a | site-b; site B's petals read ``shift_cm`` short.

    Shifted values are rounded to ``dataset.decimals`` and stay inside each feature's valid range
    (clipped to the nearest valid rounded value); a row the shift makes a duplicate of another is
    dropped (the contract's ``unique_rows``), so a few rows fewer than ``rows`` may come back.
    """
    from pipelines.batches import generate_batch

    cfg = params.dataset
    if cfg.group_column is None:
        raise ValueError("biased_rows needs dataset.group_column in params.yaml (e.g. `group_column: source`)")
    if not 0 < share_b < 1:
        raise ValueError(f"share_b must be between 0 and 1, got {share_b}")
    frame = generate_batch("clean", reference, params, rows=rows, seed=seed)
    site_b = np.random.default_rng([seed, 58]).random(len(frame)) < share_b
    frame[cfg.group_column] = np.where(site_b, SITES[1], SITES[0])
    step = 10.0**-cfg.decimals
    for feature in SHIFTED:
        if feature in frame:
            spec = cfg.features[feature]
            low, high = np.ceil(spec.min / step - 1e-9) * step, np.floor(spec.max / step + 1e-9) * step
            moved = (frame.loc[site_b, feature] - shift_cm).round(cfg.decimals).clip(low, high)
            frame.loc[site_b, feature] = moved.round(cfg.decimals)
    if cfg.unique_rows:
        frame = frame.drop_duplicates().reset_index(drop=True)
    return frame
