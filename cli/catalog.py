"""CLI commands for learning the concepts: ``concepts``, ``explain``, ``demo`` and ``ui``.

Concept: a repository that answers interview questions by running. ``concepts`` lists the catalog,
``explain`` prints one answer with the code behind it, ``demo`` runs it live and ``ui`` says where
to look at the results. Only typer, rich and the stdlib are imported here at the top; the catalog
and the demos are imported inside the commands, so ``mlops-lab --help`` stays instant.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.padding import Padding
from rich.panel import Panel
from rich.table import Table

from core.ui_ports import MLFLOW_UI_PORT, PREFECT_UI_PORT


def _fail(message: str) -> typer.Exit:
    Console(stderr=True).print(f"[bold red]error:[/bold red] {escape(message)}")
    return typer.Exit(code=1)


def _listing(rows: list[tuple[str, str]]) -> Table:
    """Two indented columns whose long text wraps inside its own column."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column()
    for left, right in rows:
        grid.add_row(f"  {left}", right)
    return grid


def concepts(
    search: Annotated[
        str | None, typer.Option("--search", "-s", help="Only concepts mentioning all these words.")
    ] = None,
) -> None:
    """List the concept catalog: id, title, demo command and number of tests."""
    from lab.catalog import load_catalog
    from lab.catalog import search as search_catalog

    items = search_catalog(search) if search else load_catalog()
    console = Console()
    if not items:
        console.print(f"no concept mentions {search!r}; `mlops-lab concepts` lists them all")
        return
    table = Table(title="MLOps concepts" + (f" matching {search!r}" if search else ""), title_justify="left")
    for column in ("id", "title", "demo", "#tests"):
        table.add_column(column, no_wrap=column != "title")
    for c in items:
        table.add_row(c.id, escape(c.title), escape(c.demo), str(len(c.tests)))
    console.print(table)
    console.print("[dim]`mlops-lab explain ID` prints the answer; `mlops-lab demo NAME` runs it.[/dim]")


def explain(
    query: Annotated[str, typer.Argument(help="Concept id (C06), slug (data-validation) or title words.")],
) -> None:
    """Print one concept: the one-line answer, the questions, the key points, scale, code, demo and tests."""
    from core.settings import Settings
    from lab.catalog import UnknownConceptError, code_summary, find, load_catalog

    try:
        c = find(query)
    except UnknownConceptError as err:
        raise _fail(str(err)) from None
    root = Settings().project_dir
    titles = {other.id: other.title for other in load_catalog()}
    console = Console()
    console.print(Panel(f"[bold]{c.id} {escape(c.title)}[/bold]  [dim]{c.slug}[/dim]", expand=False))
    console.print(f"[bold cyan]In one line:[/bold cyan] [bold]{escape(c.answer)}[/bold]")
    console.print("[bold]Questions it answers[/bold]")
    console.print(_listing([("•", escape(q)) for q in c.questions]))
    console.print("[bold]Key points of a strong answer[/bold]")
    console.print(_listing([(f"{i}.", escape(p)) for i, p in enumerate(c.key_points, start=1)]))
    console.print("[bold]What would change at scale[/bold]")
    console.print(Padding(escape(c.at_scale), (0, 0, 0, 2)))
    console.print("[bold]Code[/bold]")
    rows = []
    for ref in c.code:
        summary = code_summary(ref, root)
        note = "[red](not found)[/red]" if summary is None else escape(summary)
        rows.append((f"[magenta]{escape(ref)}[/magenta]", note))
    console.print(_listing(rows))
    console.print(f"[bold]Demo[/bold]  {escape(c.demo)}")
    console.print("[bold]Tests[/bold]  " + (escape(", ".join(c.tests)) if c.tests else "[dim](none listed yet)[/dim]"))
    related = ", ".join(f"{r} {titles[r]}" if r in titles else r for r in c.related)
    console.print(f"[bold]Related[/bold]  {escape(related)}")


def demo(name: Annotated[str, typer.Argument(help="Demo name, concept id or slug, e.g. data-validation.")]) -> None:
    """Run a narrated demo of a concept (under 30 seconds)."""
    from lab.demos import DemoNotBuiltError, MissingPrerequisiteError, UnknownDemoError, run_demo

    try:
        run_demo(name)
    except (UnknownDemoError, DemoNotBuiltError, MissingPrerequisiteError) as err:
        raise _fail(str(err)) from None


def ui(
    demo: Annotated[str | None, typer.Option(help="Open this demo's state (<state>/demos/NAME).")] = None,
    own: Annotated[bool, typer.Option("--own", help="Open your own state, even if a demo ran since.")] = False,
    port: Annotated[
        int, typer.Option(min=1, max=65535, help="MLflow UI port (5000 is AirPlay's on macOS).")
    ] = MLFLOW_UI_PORT,
    prefect_port: Annotated[int, typer.Option(min=1, max=65535, help="Prefect UI port.")] = PREFECT_UI_PORT,
) -> None:
    """Print how to open the MLflow and Prefect UIs, the Data Docs and the reports (starts nothing).

    The UIs follow the state written last, your own or a demo's (`make demo` writes <state>/demos/loop).
    """
    from core.settings import Settings
    from lab.ui_state import UnknownStateError, choose_state

    base = Settings()
    try:
        chosen = choose_state(base, demo, own)
    except UnknownStateError as exc:
        raise _fail(str(exc)) from None
    s = chosen.settings
    console = Console(soft_wrap=True)  # soft wrap keeps commands on one line, ready to copy
    console.print(f"[bold]State[/bold]: {escape(str(s.state))}")
    console.print(f"  {escape(chosen.reason)}")
    if chosen.demos:
        console.print(f"  demos with a store: {escape(', '.join(chosen.demos))} (`--demo NAME`, or `--own`)")
    mlflow_cmd = f"uv run mlflow ui --backend-store-uri {s.mlflow_tracking_uri} --port {port}"
    if s.registry_uri:
        mlflow_cmd += f" --registry-store-uri {s.registry_uri}"
    console.print("[bold]MLflow UI[/bold] (experiments, runs, model registry and aliases):")
    console.print(f"  {escape(mlflow_cmd)}")
    console.print(f"  then open http://127.0.0.1:{port}")
    # Prefect has one home for your runs and every demo's (demos keep it: core.startup sets it only if unset).
    prefect_home = os.environ.get("PREFECT_HOME", str(base.prefect_home))
    console.print("[bold]Prefect UI[/bold] (flow runs, task states, retries, schedules; demos' runs included):")
    prefect_env = f"PREFECT_HOME={prefect_home} PREFECT_SERVER_ANALYTICS_ENABLED=false"
    if (
        prefect_port != PREFECT_UI_PORT
    ):  # the UI calls the API on the port the server was told, not the one it listens on
        prefect_env += f" PREFECT_SERVER_API_PORT={prefect_port}"
    port_flag = f" --port {prefect_port}" if prefect_port != PREFECT_UI_PORT else ""
    console.print(f"  {escape(prefect_env)} uv run prefect server start{port_flag}")
    console.print(f"  then open http://127.0.0.1:{prefect_port}")
    docs = sorted(s.gx_dir.glob("**/data_docs/local_site/index.html")) if s.gx_dir.is_dir() else []
    console.print("[bold]Data Docs[/bold] (Great Expectations validation results):")
    if docs:
        for index in docs:
            console.print(f"  {escape(index.as_uri())}")
    else:
        console.print(f"  not built yet under {escape(str(s.gx_dir))}; run `mlops-lab demo data-validation`")
    console.print("[bold]Reports[/bold] (drift reports, model cards, benchmark output):")
    console.print(f"  {escape(str(s.reports_dir))}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.command()(concepts)
    app.command()(explain)
    import textwrap

    try:
        from lab.demos import DEMOS  # names only: the demos' modules load when one runs
    except ImportError:  # the API image ships core, pipelines, serving and cli only: no demos to list
        DEMOS = {}
    names = textwrap.wrap(", ".join(DEMOS), width=72, break_on_hyphens=False)  # never split a name
    # "\b": click keeps the block's line breaks as they are instead of re-wrapping it.
    epilog = "\b\nDemos (a concept id such as C21, or its slug, works too):\n" + "\n".join(f"  {n}" for n in names)
    app.command(epilog=epilog)(demo)
    app.command()(ui)
