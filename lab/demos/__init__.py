"""Narrated demos: each concept shown live, in under 30 seconds, on the real engines.

Concept: show, don't tell. An interview answer lands better as a run than as a slide, so every
catalog entry names a demo (``mlops-lab demo data-validation``). A demo is a module in this package
with ``run(n: Narrator, ctx: LabContext) -> None``; ``DEMOS`` maps its name to the module path,
and the module is imported only when that demo runs, so the CLI stays fast and one unfinished or
broken demo cannot break the others. ``run_demo`` accepts a demo name, a concept id or a slug.

Every demo runs on a state folder of its own, ``<state>/demos/<name>``, wiped at the start of each run
(`own_state`): a demo starts from a known point whatever ran before, tells the same story every time,
and leaves nothing in the state the learner's own commands and the workshop labs use.
"""

from __future__ import annotations

import importlib
import importlib.util
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from lab.narrate import Narrator

if TYPE_CHECKING:
    from rich.console import Console

    from core.context import LabContext
    from core.settings import Settings

DemoFn = Callable[["Narrator", "LabContext"], None]

DEMOS: dict[str, str] = {
    "loop": "lab.demos.loop",
    "orchestration": "lab.demos.orchestration",
    "reproducibility": "lab.demos.reproducibility",
    "data-versioning": "lab.demos.data_versioning",
    "data-validation": "lab.demos.data_validation",
    "features": "lab.demos.features",
    "skew": "lab.demos.skew",
    "tracking": "lab.demos.tracking",
    "registry-gate": "lab.demos.registry_gate",
    "rollback": "lab.demos.rollback",
    "canary": "lab.demos.canary",
    "blue-green": "lab.demos.blue_green",
    "shadow": "lab.demos.shadow",
    "ab-test": "lab.demos.ab_test",
    "bandit": "lab.demos.bandit",
    "serving-rollback": "lab.demos.serving_rollback",
    "logs-vs-metrics": "lab.demos.logs_vs_metrics",
    "api-fuzz": "lab.demos.api_fuzz",
    "load-test": "lab.demos.load_test",
    "security": "lab.demos.security",
    "retrain-loop": "lab.demos.retrain_loop",
    "concept-drift": "lab.demos.concept_drift",
    "attribution": "lab.demos.attribution",
    "anomaly": "lab.demos.anomaly",
    "alerts": "lab.demos.alerts",
    "drift": "lab.demos.drift",
    "immutable-infra": "lab.demos.immutable_infra",
    "k8s": "lab.demos.k8s",
    "disaster-recovery": "lab.demos.disaster_recovery",
    "ci-cd": "lab.demos.ci_cd",
    "test-pyramid": "lab.demos.test_pyramid",
    "technical-debt": "lab.demos.technical_debt",
    "cloud-equivalents": "lab.demos.cloud_equivalents",
    "serverless": "lab.demos.serverless",
    "onnx": "lab.demos.onnx_optimisation",
    "approval": "lab.demos.approval",
    "privacy": "lab.demos.privacy",
    "fairness": "lab.demos.fairness",
    "explain": "lab.demos.explain",
    "batch-scoring": "lab.demos.batch_scoring",
    "feature-store": "lab.demos.feature_store",
    "streaming": "lab.demos.streaming",
}


class UnknownDemoError(LookupError):
    """The name is neither a demo nor a concept with a registered demo; the message lists the demos."""


class DemoNotBuiltError(LookupError):
    """The demo is registered but its module (or its ``run`` function) does not exist yet."""


class MissingPrerequisiteError(RuntimeError):
    """A system tool the demo runs (a real broker, say) is not installed; the message says how to install it."""


def _available() -> str:
    return ", ".join(DEMOS)


def resolve_demo(name: str) -> str:
    """The demo name for a demo name, a concept id (``C06``) or a concept slug.

    Raises:
        UnknownDemoError: nothing by that name; the message lists the available demos.
    """
    from lab.catalog import UnknownConceptError, find

    key = name.strip().lower()
    if key in DEMOS:
        return key
    try:
        concept = find(name)
    except UnknownConceptError:
        raise UnknownDemoError(
            f"unknown demo {name!r}. Available demos: {_available()}. "
            "A concept id or slug works too (`mlops-lab concepts` lists them)."
        ) from None
    if concept.demo_name not in DEMOS:
        raise UnknownDemoError(
            f"concept {concept.id} names demo {concept.demo_name!r}, which is not registered in "
            f"lab/demos/__init__.py DEMOS. Available demos: {_available()}."
        )
    return concept.demo_name


def load_demo(name: str) -> DemoFn:
    """Import a registered demo's module and return its ``run`` function.

    Raises:
        DemoNotBuiltError: the module or its ``run`` function does not exist yet.
    """
    module_path = DEMOS[name]
    try:
        spec = importlib.util.find_spec(module_path)
    except ModuleNotFoundError:  # a parent package is missing
        spec = None
    if spec is None:
        raise DemoNotBuiltError(
            f"demo {name!r} is not built yet: module {module_path} does not exist. "
            f"Create it with `def run(n: Narrator, ctx: LabContext) -> None`."
        )
    run = getattr(importlib.import_module(module_path), "run", None)
    if not callable(run):
        raise DemoNotBuiltError(
            f"demo {name!r} is not built yet: {module_path} has no `run(n: Narrator, ctx: LabContext)` function."
        )
    return run


@contextmanager
def own_state(ctx: LabContext, demo: str) -> Iterator[LabContext]:
    """A wiped ``<state>/demos/<demo>`` folder configured for the demo, and ``ctx``'s configuration back after it."""
    from core.context import LabContext
    from core.mlflow_config import forget_mlflow_stores
    from core.startup import configure_runtime

    root = ctx.settings.state / "demos" / demo
    forget_mlflow_stores()  # this process may still hold the store of an earlier run open
    shutil.rmtree(root, ignore_errors=True)
    settings = ctx.settings.model_copy(update={"state_dir": root})
    configure_runtime(settings)  # the demo's own MLflow store, prediction log and reports
    try:
        yield LabContext(settings=settings, params=ctx.params)
    finally:
        configure_runtime(ctx.settings)


def run_demo(name: str, console: Console | None = None, settings: Settings | None = None) -> float:
    """Run one demo with narration and return its duration in seconds.

    Args:
        name: a demo name, a concept id or a concept slug.
        console: where the narration goes (tests pass a recording console).
        settings: the settings to use; default: from the environment. The demo itself runs on
            ``<state>/demos/<name>`` (`own_state`).

    Raises:
        UnknownDemoError: the name matches nothing.
        DemoNotBuiltError: the demo's module is not written yet.
    """
    from core.context import load_context
    from lab.catalog import load_catalog

    demo = resolve_demo(name)  # resolve and import before touching any state
    run = load_demo(demo)
    narrator = Narrator(console)
    with own_state(load_context(settings), demo) as ctx:
        start = time.perf_counter()
        run(narrator, ctx)
        elapsed = time.perf_counter() - start
    ids = [c.id for c in load_catalog() if c.demo_name == demo]
    narrator.console.print(f"\n[bold]demo {demo} finished in {elapsed:.1f} s[/bold]")
    narrator.console.print(
        f"[dim]this demo's own state: {ctx.settings.state} "
        f"(`MLOPS_STATE_DIR={ctx.settings.state} uv run mlops-lab registry list` looks inside)[/dim]"
    )
    if ids:
        narrator.console.print(
            f"[dim]concepts shown: {', '.join(ids)} (`mlops-lab explain {ids[0]}` for the answer)[/dim]"
        )
    return elapsed
