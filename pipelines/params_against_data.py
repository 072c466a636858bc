"""The dataset contract held against the data it describes: problems a params file cannot show alone.

Concept: data contracts (C06, C07). A contract whose classes never occur in the data, or whose ranges
exclude the data's values, refuses every batch, and the refusal reads as a data problem when the
params are wrong. ``problems_against_data`` checks the params against the reference file
(``dataset.path``) before a dataset is switched to, and says each problem in one line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from core.params import DatasetConfig


def problems_against_data(cfg: DatasetConfig, frame: pd.DataFrame, source: str = "the data") -> list[str]:
    """Columns the data lacks, classes that do not occur in it, ranges that exclude some of its values."""
    problems: list[str] = []
    columns = {str(c) for c in frame.columns}
    if missing := [c for c in cfg.required_columns if c not in columns]:
        problems.append(f"dataset: column(s) {missing} are not in {source} (its columns: {sorted(columns)})")
    if cfg.target in columns:
        seen = {str(v) for v in frame[cfg.target].dropna().unique()}
        if absent := [c for c in cfg.classes if c not in seen]:
            problems.append(f"dataset.classes: {absent} do not occur in {source} (it has {sorted(seen)})")
    for name, spec in cfg.features.items():
        if name not in columns:
            continue
        values = pd.to_numeric(frame[name], errors="coerce").dropna()
        outside = values[(values < spec.min) | (values > spec.max)]
        if len(outside):
            problems.append(
                f"dataset.features.{name}: range {spec.min}..{spec.max} excludes {len(outside)} of {len(values)} "
                f"values of {source} (they span {values.min():g}..{values.max():g})"
            )
    return problems
