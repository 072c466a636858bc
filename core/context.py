"""Settings and parameters together: what a command, a flow run or a demo works with.

`load_context` is for the edges. Called without settings it reads the environment (a CLI command,
a deployment's flow run); called with settings it uses them (a test, a demo on a state folder of its
own). Either way it configures the process for those settings (`core.startup.configure_runtime`).
"""

from __future__ import annotations

from dataclasses import dataclass

from core.params import Params, load_params
from core.settings import Settings
from core.startup import configure_runtime


@dataclass(frozen=True)
class LabContext:
    settings: Settings
    params: Params


def load_context(settings: Settings | None = None) -> LabContext:
    """Settings (from the environment unless given), params from the file they name; runtime configured."""
    s = settings if settings is not None else Settings()
    configure_runtime(s)
    return LabContext(settings=s, params=load_params(s.params_path))


def flow_context(settings: Settings | None, params: Params | None) -> LabContext:
    """What a flow runs with: the settings and params it was given, or, for a deployment's run that passes
    none, the environment's (the deployment's entry point is an edge, so it configures the process)."""
    if settings is not None and params is not None:
        return LabContext(settings=settings, params=params)
    ctx = load_context(settings)
    return LabContext(settings=ctx.settings, params=params if params is not None else ctx.params)
