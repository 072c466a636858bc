"""CLI command: ``bench``, the performance targets measured against baselines.

Concept: speed is measured, not asserted in tests (DESIGN.md, "Performance targets"). This shell
runs the sections of ``bench/harness.py``, writes ``docs/benchmarks.md`` and prints the same report.
It always exits 0 when the measurements ran: a missed target is a finding in the report, not a
crash. Only typer, rich and the stdlib are imported at the top, so ``--help`` stays instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from cli.help import group_settings


def bench(
    out: Annotated[Path | None, typer.Option(help="Report file (default: docs/benchmarks.md).")] = None,
    only: Annotated[
        list[str] | None,
        typer.Option(
            "--only",
            help="Only this section (cli, validation, training, serving, drift, cold-start, batch-scoring, demo); "
            "repeatable.",
        ),
    ] = None,
) -> None:
    """Time CLI start-up, validation and training side by side with baselines; write docs/benchmarks.md."""
    from rich.markdown import Markdown
    from rich.markup import escape

    from bench.harness import SECTIONS, BenchEnv, render_markdown, run_bench, write_report
    from core.context import load_context

    console = Console()
    unknown = sorted(set(only or []) - set(SECTIONS))
    if unknown:
        raise typer.BadParameter(f"unknown section(s) {unknown}; choose from {list(SECTIONS)}", param_hint="--only")
    ctx = load_context()
    env = BenchEnv(
        settings=ctx.settings, params=ctx.params, say=lambda text: console.print(f"[dim]{escape(text)}[/dim]")
    )
    report = run_bench(env, only)
    path = write_report(report, out or ctx.settings.project_dir / "docs" / "benchmarks.md")
    console.print(Markdown(render_markdown(report)))
    console.print(f"[bold]wrote {path}[/bold] in {report.duration_s:.0f} s")


def demo_timings() -> None:
    """Run every demo once, in order, each on its own fresh state; write docs/demo-timings.md (minutes)."""
    from lab.demo_timings import write_timings

    path, all_ok = write_timings()
    typer.echo(f"wrote {path}")
    if not all_ok:
        typer.echo("a demo failed or ran out of time: see the report", err=True)
        raise typer.Exit(1)


def demo_pictures() -> None:
    """Run the canary and ab-test demos on their own state; copy their pictures to docs/operations/."""
    from lab.demo_pictures import write_pictures

    written, seconds = write_pictures()
    for demo, took in seconds.items():
        typer.echo(f"demo {demo}: {took:.1f} s")
    for path in written:
        typer.echo(f"wrote {path}")


study = typer.Typer(
    **group_settings(),
    help="Seeded simulations that measure a statistical decision's error rates.",
    no_args_is_help=True,
)


@study.command("drift")
def drift_study(
    out: Annotated[Path | None, typer.Option(help="Report file (default: docs/drift-detection.md).")] = None,
    seeds: Annotated[int | None, typer.Option(min=1, help="Windows per kind of shift (default: the doc's).")] = None,
) -> None:
    """How often each drift check fires on clean and on shifted windows; write docs/drift-detection.md."""
    from bench.drift_study import DOC_SEEDS, write_doc
    from core.context import load_context

    ctx = load_context()
    path = write_doc(ctx.params, out or ctx.settings.project_dir / "docs" / "drift-detection.md", seeds or DOC_SEEDS)
    typer.echo(f"wrote {path}")


@study.command("gate")
def gate_study(
    out: Annotated[Path | None, typer.Option(help="Report file (default: docs/gate-study.md).")] = None,
    reps: Annotated[int | None, typer.Option(min=1, help="Simulated holdouts per cell (default: 2,000).")] = None,
) -> None:
    """How often the quality gate rejects an equally good and a worse candidate; write docs/gate-study.md."""
    from bench.gate_study import DOC_REPS, write_doc
    from core.context import load_context

    ctx = load_context()
    path = write_doc(ctx.params, out or ctx.settings.project_dir / "docs" / "gate-study.md", reps or DOC_REPS)
    typer.echo(f"wrote {path}")


@study.command("fairness")
def fairness_study(
    out: Annotated[Path | None, typer.Option(help="Report file (default: docs/fairness-study.md).")] = None,
    draws: Annotated[int | None, typer.Option(min=1, help="Simulated gates per cell (default: 4,000).")] = None,
) -> None:
    """How often the fairness bound refuses a fair model and passes an unfair one; write docs/fairness-study.md."""
    from bench.fairness_study import DOC_DRAWS, write_doc
    from core.context import load_context

    ctx = load_context()
    path = write_doc(ctx.params, out or ctx.settings.project_dir / "docs" / "fairness-study.md", draws or DOC_DRAWS)
    typer.echo(f"wrote {path}")


@study.command("ab")
def ab_study(
    out: Annotated[Path | None, typer.Option(help="Report file (default: docs/ab-study.md, plot next to it).")] = None,
    reps: Annotated[int | None, typer.Option(min=1, help="Simulated tests per row (default: 4,000).")] = None,
) -> None:
    """False-positive rate under repeated looks and power of the A/B rule; write docs/ab-study.md and .png."""
    from bench.ab_study import DOC_REPS, write_doc
    from core.context import load_context

    ctx = load_context()
    path = write_doc(ctx.params, out or ctx.settings.project_dir / "docs" / "ab-study.md", reps or DOC_REPS)
    typer.echo(f"wrote {path} and {path.with_suffix('.png').name}")


@study.command("bandit")
def bandit_study(
    out: Annotated[Path | None, typer.Option(help="Report file (default: docs/bandit-study.md).")] = None,
    reps: Annotated[int | None, typer.Option(min=2, help="Seeded runs per cell (default: 200).")] = None,
) -> None:
    """Thompson sampling vs an A/B split with delayed labels and a drifting arm; write docs/bandit-study.md."""
    from bench.bandit_study import DOC_REPS, write_doc
    from core.context import load_context

    ctx = load_context()
    written = write_doc(out or ctx.settings.project_dir / "docs" / "bandit-study.md", reps or DOC_REPS)
    typer.echo(f"wrote {written.doc} and {written.png}")


@study.command("canary")
def canary_study(
    out: Annotated[Path | None, typer.Option(help="Report file (default: docs/canary-study.md).")] = None,
    reps: Annotated[int | None, typer.Option(min=1, help="Simulated rollouts per cell (default: 2,000).")] = None,
) -> None:
    """How often the canary aborts an equally good and stops a worse challenger; write docs/canary-study.md."""
    from bench.canary_study import DOC_REPS, write_doc
    from core.context import load_context

    ctx = load_context()
    path = write_doc(ctx.params.rollout, out or ctx.settings.project_dir / "docs" / "canary-study.md", reps or DOC_REPS)
    typer.echo(f"wrote {path} and {path.with_suffix('.png').name}")


@study.command("leakage")
def leakage_study(
    out: Annotated[Path | None, typer.Option(help="Report file (default: docs/feature-leakage-study.md).")] = None,
    seeds: Annotated[int | None, typer.Option(min=1, help="Seeded histories (default: 20).")] = None,
    specimens: Annotated[int | None, typer.Option(min=20, help="Specimens per history (default: 400).")] = None,
) -> None:
    """How much a naive feature join inflates offline accuracy; write docs/feature-leakage-study.md."""
    from bench.feature_leakage_study import DOC_SEEDS, DOC_SPECIMENS, run_and_write
    from core.context import load_context

    ctx = load_context()
    path = run_and_write(
        ctx.params,
        out or ctx.settings.project_dir / "docs" / "feature-leakage-study.md",
        seeds or DOC_SEEDS,
        specimens or DOC_SPECIMENS,
    )
    typer.echo(f"wrote {path}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.command("bench")(bench)
    app.command("demo-timings")(demo_timings)
    app.command("demo-pictures")(demo_pictures)
    app.add_typer(study, name="study")
