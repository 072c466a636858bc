"""Demo ``batch-scoring`` (C61): a 200,000-row file scored in chunks, cut short, resumed on a Dask cluster.

Generates a file to score (three rows broken on purpose), runs the ``batch-scoring`` flow on threads with
a budget of three chunks (a run that stops early, as a killed one would), then runs it again on a Dask
LocalCluster of two worker processes: the finished chunks are skipped, the rest scored. Shows the output
rows, the refused rows with their reasons, the lineage in the manifest, and that the answers equal the
service's own scoring of the same rows.
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING

import numpy as np

from flows.batch_scoring import MANIFEST_FILE, read_output
from flows.batch_scoring_flow import run_batch_scoring
from lab.demos.prep import ensure_champion
from pipelines.batches import generate_batch
from pipelines.data import read_csv
from serving.contract import RequestContract
from serving.model_cache import load_served_model
from serving.predict import score

if TYPE_CHECKING:
    from core.context import LabContext
    from lab.narrate import Narrator

ROWS, CHUNK_ROWS = 200_000, 25_000
BROKEN = {1_000: ("petal_length", 42.0), 77_777: ("sepal_width", float("nan")), 150_001: ("sepal_length", -1.0)}


def _start_prefect_api() -> threading.Thread:
    """Prefect's temporary server (about 10 s to start here) starting while the model trains, unless an API is set.

    Joined before the first flow: its ``start`` marks the server running before it answers, so a flow that asked
    for it meanwhile would not wait for it.
    """
    from prefect.settings import PREFECT_API_URL

    def start() -> None:
        if not PREFECT_API_URL.value():
            from prefect.server.api.server import SubprocessASGIServer

            SubprocessASGIServer().start()

    thread = threading.Thread(target=start, name="prefect-api", daemon=True)
    thread.start()
    return thread


def run(n: Narrator, ctx: LabContext) -> None:
    n.title("Batch scoring at scale: chunks on Dask, resumable, with lineage", "C61")
    prefect_api = _start_prefect_api()
    version = ensure_champion(ctx, n)
    s, dataset = ctx.settings, ctx.params.dataset
    features = list(dataset.features)

    n.step(f"A file to score: {ROWS:,} rows, an id per row, {len(BROKEN)} rows broken on purpose")
    frame = generate_batch(
        "clean", read_csv(s.resolve(dataset.path)), ctx.params, rows=ROWS, seed=11, unique_rows=False
    )
    frame = frame.drop(columns=[dataset.target]).astype({f: "float64" for f in features})
    frame.insert(0, "specimen_id", [f"sp-{i:06d}" for i in range(ROWS)])
    for row, (column, value) in BROKEN.items():
        frame.loc[row, column] = value
    source, out = s.state / "batch" / "specimens.parquet", s.state / "batch" / "scored"
    source.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(source, index=False)
    n.say(f"wrote {source.name}: {ROWS:,} rows; the flow stages it as Parquet with one row group per chunk")
    contract = RequestContract.from_dataset(dataset)

    n.step(f"Run 1, on threads, with a budget of 3 chunks of {CHUNK_ROWS:,}: it stops early, as a killed run would")
    threads = s.model_copy(update={"batch_runner": "threads", "batch_workers": 2})
    prefect_api.join()
    job, summary = run_batch_scoring(threads, contract, source, out, chunk_rows=CHUNK_ROWS, max_chunks=3)
    parts = sorted(p.name for p in out.glob("part-*.parquet"))
    n.say(f"champion v{job.version} pinned in _job.json; {len(parts)} of {job.chunks} part files: {', '.join(parts)}")
    n.why("each part is written to a temporary name and renamed: a chunk is on disk whole or not at all")

    n.step("Run 2, on a Dask LocalCluster of 2 worker processes: finished chunks are skipped")
    on_dask = s.model_copy(update={"batch_runner": "dask", "batch_workers": 2})
    job, summary = run_batch_scoring(on_dask, contract, source, out, chunk_rows=CHUNK_ROWS)
    assert summary is not None
    n.ok(summary.line())
    n.why("the same flow runs on a remote scheduler with MLOPS_DASK_ADDRESS=tcp://host:8786 (shared storage)")

    n.step("The output: one row per input row, the refused ones with their reason and no prediction")
    result = read_output(out)
    refused = result[result["error"].notna()]
    n.table("refused by the data contract", ["row", "specimen_id", "reason"],
            [[int(r.row), r.specimen_id, r.error] for r in refused.itertuples()])  # fmt: skip
    sample = result.iloc[[0, 1, 2]]
    classes = [c for c in result.columns if c.startswith("proba_")]
    n.table("scored rows (first three)", ["row", "specimen_id", "prediction", *classes],
            [[int(r["row"]), r["specimen_id"], r["prediction"], *(f"{r[c]:.3f}" for c in classes)]
             for _, r in sample.iterrows()])  # fmt: skip
    rows_once = result["row"].tolist() == list(range(ROWS))
    (n.ok if rows_once else n.bad)(f"{len(result):,} output rows, each input row exactly once: {rows_once}")

    n.step("Lineage: which model, which input")
    manifest = json.loads((out / MANIFEST_FILE).read_text(encoding="utf-8"))["job"]
    fields = ("model_name", "version", "run_id", "input_sha256", "rows", "chunk_rows")
    n.table("_manifest.json", ["field", "value"], [[k, manifest[k]] for k in fields])

    n.step("Same answers as the service: its loader and scoring function on 2,000 rows in one call")
    model = load_served_model(s, version, features)
    check = frame.drop(index=list(BROKEN)).head(2_000)
    served = score(model, check[features].to_numpy())
    batch = result.set_index("row").loc[check.index]
    same = batch["prediction"].tolist() == served.labels
    gap = float(np.abs(batch[[f"proba_{c}" for c in served.classes]].to_numpy() - served.probabilities).max())
    (n.ok if same else n.bad)(f"labels equal: {same}; largest probability difference {gap:.1e}")
    n.code("flows/batch_scoring.py", "flows/batch_scoring_flow.py", "cli/batch.py")
