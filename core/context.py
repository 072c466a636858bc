"""Load settings and parameters together, for CLI commands, flows and demos."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.settings import Settings, configure_runtime, get_settings

if TYPE_CHECKING:
    from core.params import Params


@dataclass(frozen=True)
class LabContext:
    settings: Settings
    params: Params


def load_context(settings: Settings | None = None) -> LabContext:
    """Settings from the environment, params from the file they name; runtime configured."""
    from core.params import load_params

    s = settings or get_settings()
    configure_runtime(s)
    return LabContext(settings=s, params=load_params(s.params_path))
