"""Demo "data-validation" (C06, C07): the data contract blocks bad batches before training.

The raw iris file passes the Great Expectations suite built from params.yaml; then batches with
classic upstream defects (a unit mix-up, relabelled classes, a retried upload, a decimal-comma
locale) are fabricated and each is blocked with the expectation, column and bad values named.
A shifted but valid batch passes: catching drift is monitoring's job, not validation's.
"""

from __future__ import annotations

from rich.markup import escape

from core.context import LabContext
from lab.narrate import Narrator
from pipelines.batches import BatchKind, generate_batch, write_batch
from pipelines.data import ingest, read_csv
from pipelines.validation import DataValidationError, build_suite, validate_file

# The batches shown, and the upstream story behind each one.
SHOWN = {
    "out-of-range": "one feature recorded in millimetres on 30% of the rows",
    "unknown-class": "an upstream system that spells the classes in capitals",
    "duplicates": "a retried upload: a fifth of the rows arrive twice",
    "wrong-types": "a locale with decimal commas: '5,1' instead of 5.1",
    "covariate-shift": "inputs moved as set in batches.covariate_shift, every value still plausible",
}


def run(n: Narrator, ctx: LabContext) -> None:

    cfg, docs_dir = ctx.params.dataset, ctx.settings.gx_dir
    n.title("Data validation: bad batches never reach training", "C06 · C07")
    raw = ctx.settings.resolve(cfg.path)
    if not raw.exists():
        ingest(cfg, ctx.params.ingest, raw)
        n.say(f"ingested {escape(str(raw))} from scikit-learn's bundled copy")

    n.step("The expectation suite is derived from the data contract in params.yaml (versioned in git):")
    rows: list[list[object]] = [
        [name, "number", f"{s.min}..{s.max}", f"{s.mean[0]}..{s.mean[1]}" if s.mean else "-"]
        for name, s in cfg.features.items()
    ]
    rows.append([cfg.target, "text", f"one of {cfg.classes}", "-"])
    n.table("dataset contract", ["column", "type", "valid values", "batch mean in"], rows)
    suite = build_suite(cfg, cfg.required_columns)
    kinds = sorted({e.expectation_type for e in suite.expectations})
    n.say(f"{len(suite.expectations)} expectations of {len(kinds)} kinds, e.g. {', '.join(kinds[:3])}")
    n.code("pipelines/validation.py::build_suite", "params.yaml (dataset:)")

    n.step(f"Validate the raw training data ({escape(raw.name)}):")
    result = validate_file(raw, cfg, docs_dir=docs_dir)
    if result.success:
        n.ok(f"passed all {result.statistics['evaluated']} expectations")
    else:
        n.bad(escape(result.summary()))

    n.step("Fabricate production batches with classic upstream defects and validate each:")
    reference = read_csv(raw)
    blocked = []
    for kind, story in SHOWN.items():
        path = write_batch(
            generate_batch(kind, reference, ctx.params, seed=7),
            ctx.settings.state / "batches" / f"{kind}.csv",
            kind,
            cfg.decimals,
        )
        result = validate_file(path, cfg, docs_dir=docs_dir)
        if result.success:
            n.ok(escape(f"{kind} ({story}): valid. A shift is not a defect; drift monitoring watches for it"))
            continue
        blocked.append(result)
        n.bad(escape(f"{kind} ({story}): blocked"))
        for f in result.failures:
            n.say(escape(f"   {f.expectation} · {f.column or 'table'} · {f.detail}"))
            shown = [v for v in f.examples if v is not None]
            if shown and f.column:
                n.say(escape(f"      examples: {', '.join(map(repr, shown[:3]))}"))
    n.code("pipelines/batches.py::generate_batch", f"mlops-lab generate-batch {BatchKind.NULLS.value} -o batch.csv")

    n.step("Validation gates training: the training step calls raise_for_failures() first.")
    try:
        for result in blocked:
            result.raise_for_failures()
    except DataValidationError as err:
        n.ok(f"DataValidationError for {escape(err.result.batch)}: the run stops, nothing is trained or registered")
    n.why(
        "a model trained on millimetres or mislabelled rows is silently wrong and looks fine in metrics; "
        "a blocked batch costs one readable report that the data owner can fix at the source."
    )
    n.code("pipelines/training_steps.py::validate_data", "mlops-lab validate data/raw/iris.csv --json report.json")

    n.step("Every run is rendered as Data Docs (static HTML anyone can open):")
    n.say(escape((docs_dir / "data_docs" / "local_site" / "index.html").as_uri()))
