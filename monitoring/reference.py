"""The reference a production window is compared with: the data the serving champion was trained on.

Concept: drift is relative (C32). "Has the input distribution changed?" only means something against
a baseline, and the right baseline is the data the *current* model learned from -- after a retrain
on drifted data, that drifted data is the new normal. Lineage makes this exact: every registered
version's run carries a ``data_path`` tag and the data's md5 (C13), so the reference is the champion's
own training file. Only when that file is gone (another machine, a wiped state folder) does it fall
back to the dataset in params.yaml, and says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from core.mlflow_config import mlflow_client
from pipelines.data import read_csv
from pipelines.registry import current_aliases

if TYPE_CHECKING:
    import pandas as pd

    from core.params import Params
    from core.settings import Settings


@dataclass(frozen=True)
class Reference:
    """The baseline frame, where it came from and which champion it belongs to."""

    frame: pd.DataFrame
    path: Path
    champion: str | None
    note: str


def champion_reference(settings: Settings, params: Params) -> Reference:
    """The champion's training data (from its lineage tags), else the dataset from params.yaml."""
    fallback = settings.resolve(params.dataset.path)
    champion = current_aliases(settings).get("champion")
    if champion is None:
        return Reference(read_csv(fallback), fallback, None, "no champion yet: the dataset from params.yaml")
    client = mlflow_client(settings)
    run_id = client.get_model_version(settings.model_name, champion).run_id
    tagged = client.get_run(run_id).data.tags.get("data_path") if run_id else None
    if tagged:
        path = settings.resolve(tagged)
        if path.exists():
            return Reference(read_csv(path), path, champion, f"champion v{champion}'s training data")
        note = f"champion v{champion}'s training data {path} is missing here: the dataset from params.yaml"
    else:
        note = f"champion v{champion} has no data_path tag: the dataset from params.yaml"
    return Reference(read_csv(fallback), fallback, champion, note)
