"""CLI command ``mlops-lab explain-prediction --row '{...}'``: why a registered model gives one row its class.

Thin shell over `pipelines.explain` (C57), in process and offline, the twin of ``POST /v1/explain`` on a
running service: the champion's Pipeline by default, or ``--version N``; no routing (a CLI has no user
to route), nothing written to the prediction log. ``mlops-lab explain`` is the concept catalog's command,
hence the longer name.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

EXIT_BAD_ROW = 2


def explain_prediction(
    row: Annotated[str, typer.Option(help="One row as JSON, the /v1/predict body: '{\"sepal_length\": 5.1, ...}'.")],
    version: Annotated[str | None, typer.Option(help="Registered version to explain (default: the champion).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the explanation as JSON.")] = False,
) -> None:
    """Per-feature contributions for one row's prediction, adding up from the base value to the model's output."""
    from core.context import load_context

    ctx = load_context()
    features = ctx.params.dataset.feature_names
    values = _row_values(row, features)
    pipeline, version = _load(ctx, version)
    from pipelines.data import read_csv
    from pipelines.explain import Explainer

    path = ctx.settings.resolve(ctx.params.dataset.path)
    background = read_csv(path)[features].to_numpy(dtype="float64") if path.exists() else None
    explanation = Explainer(pipeline, background, seed=ctx.params.train.seed).explain(values)[0]
    if as_json:
        typer.echo(json.dumps({"model_version": version, **explanation.to_dict()}, indent=2))
        return
    for line in render(explanation, version):
        typer.echo(line)


def _row_values(row: str, features: list[str]) -> Any:
    import numpy as np

    try:
        parsed = json.loads(row)
    except json.JSONDecodeError as err:
        raise typer.BadParameter(f"not JSON: {err}", param_hint="--row") from None
    if not isinstance(parsed, dict):
        raise typer.BadParameter("one JSON object of feature fields", param_hint="--row")
    missing, extra = [f for f in features if f not in parsed], sorted(set(parsed) - set(features))
    if missing or extra:
        raise typer.BadParameter(f"missing {missing}, unknown {extra}; fields: {features}", param_hint="--row")
    try:
        return np.array([[float(parsed[f]) for f in features]])
    except (TypeError, ValueError) as err:
        raise typer.BadParameter(f"every field must be a number: {err}", param_hint="--row") from None


def _load(ctx: Any, version: str | None) -> tuple[Any, str]:
    from pipelines.registry import current_aliases, load_version_model

    if version is None:
        version = current_aliases(ctx.settings).get("champion")
        if version is None:
            typer.echo("no champion registered yet: `mlops-lab train` first", err=True)
            raise typer.Exit(EXIT_BAD_ROW)
    return load_version_model(ctx.settings, version, ctx.params.dataset.feature_names), version


def render(explanation: Any, version: str) -> list[str]:
    """The explanation as lines: base, one line per feature (largest first), the output they add up to."""
    space = "margin (logit)" if explanation.output == "margin" else "probability"
    lines = [
        f"version {version} predicts {explanation.explained_class}; {explanation.method} method, {space} space",
        f"  {'base value':<34} {explanation.base_value:+.4f}",
    ]
    ranked = sorted(explanation.contributions.items(), key=lambda kv: -abs(kv[1]))
    lines += [f"  {name:<34} {value:+.4f}" for name, value in ranked]
    lines.append(f"  {'= output for ' + explanation.explained_class:<34} {explanation.output_value:+.4f}")
    by_input = ", ".join(f"{k} {v:+.3f}" for k, v in explanation.by_input.items())
    lines.append(f"by input (derived features split equally): {by_input}")
    return lines


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.command("explain-prediction")(explain_prediction)
