"""The test pyramid, measured: how many tests each layer holds and which real engines each layer uses.

Concept: test pyramid (C39). Many fast unit tests on pure functions, fewer integration tests that
start the real engines (MLflow store, Prefect API, uvicorn, PostgreSQL, Prometheus), and a few
end-to-end runs of the CLI. The shape is a cost trade-off: unit tests pin a failure to a function
in milliseconds; integration tests prove the pieces agree; end-to-end tests prove the user's path
works but are slow and vague about what broke. Everything here is pure (text in, numbers out), so
the counts come from pytest's own ``--collect-only -q`` output instead of a hand-kept list, and
the demo collects them live.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise

# Layer name -> the folder that holds it, from the top of the pyramid's base up.
LAYERS: tuple[tuple[str, str], ...] = (
    ("unit", "tests/unit"),
    ("integration", "tests/integration"),
    ("e2e", "tests/e2e"),
)

# What a layer starts, recognised by code in its test sources (lower-cased substrings): imports,
# the fixtures that build real engines (tests/conftest.py), subprocess calls.
ENGINES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("real MLflow store", ("import mlflow", "from mlflow", "make_settings", "settings: settings")),
    ("real Prefect API", ("from prefect", "import prefect")),
    ("real uvicorn server", ("uvicorn",)),
    ("real PostgreSQL", ("database_url",)),
    ("real promtool / Prometheus", ("promtool", "prometheus_binary", '"prometheus"')),
    ("DVC", ("dvc repro", '"dvc"')),
    ("in-process FastAPI", ("testclient", "running_service", "create_app")),
    ("subprocesses (CLI, linters)", ("subprocess",)),
)

_SUMMARY_RE = re.compile(r"^(\d+) tests? collected(?:, (\d+) errors?)?")
_OUTCOME_RE = re.compile(r"(\d+) (passed|failed|errors?|skipped|deselected|xfailed|xpassed)")


class CollectOutputError(ValueError):
    """The text is not ``pytest --collect-only -q`` output; the message says what was expected."""


@dataclass(frozen=True)
class Collected:
    """What one ``pytest --collect-only -q`` run found."""

    node_ids: tuple[str, ...]
    reported: int
    errors: int


def parse_collect_output(text: str) -> Collected:
    """Node ids and the summary line from ``pytest --collect-only -q`` output.

    Raises:
        CollectOutputError: no ``N tests collected`` line, or it disagrees with the ids listed.
    """
    node_ids = tuple(line.strip() for line in text.splitlines() if "::" in line and not line.startswith(" "))
    summary = next((m for line in text.splitlines() if (m := _SUMMARY_RE.match(line.strip()))), None)
    if summary is None:
        raise CollectOutputError("no 'N tests collected' line: pass the output of `pytest --collect-only -q`")
    collected = Collected(node_ids, int(summary.group(1)), int(summary.group(2) or 0))
    if collected.reported != len(node_ids):
        raise CollectOutputError(f"pytest reported {collected.reported} tests but listed {len(node_ids)} node ids")
    return collected


def count_by_layer(node_ids: Iterable[str], layers: Sequence[tuple[str, str]] = LAYERS) -> dict[str, int]:
    """Tests per layer, by the folder each node id lives in (tests outside every layer are ignored)."""
    counts = dict.fromkeys((name for name, _ in layers), 0)
    for node in node_ids:
        for name, folder in layers:
            if node.startswith(folder.rstrip("/") + "/"):
                counts[name] += 1
                break
    return counts


def is_pyramid(counts: Mapping[str, int], layers: Sequence[tuple[str, str]] = LAYERS) -> bool:
    """Whether each layer is strictly larger than the one above it and the top is not empty."""
    sizes = [counts.get(name, 0) for name, _ in layers]
    return sizes[-1] > 0 and all(low > high for low, high in pairwise(sizes))


def registered_markers(pyproject_text: str) -> dict[str, str]:
    """Marker name -> description from ``[tool.pytest.ini_options] markers`` in pyproject.toml."""
    options = tomllib.loads(pyproject_text).get("tool", {}).get("pytest", {}).get("ini_options", {})
    markers: dict[str, str] = {}
    for entry in options.get("markers", []):
        name, _, description = entry.partition(":")
        markers[name.strip()] = description.strip()
    return markers


def engines_used(
    sources: Mapping[str, str], engines: Sequence[tuple[str, tuple[str, ...]]] = ENGINES
) -> dict[str, int]:
    """Engine -> how many of the given test sources (path -> text) mention one of its words."""
    lowered = [text.lower() for text in sources.values()]
    found = {name: sum(any(w in text for w in words) for text in lowered) for name, words in engines}
    return {name: n for name, n in found.items() if n}


def parse_outcome(text: str) -> dict[str, int]:
    """Counts from pytest's last summary line, e.g. ``{'passed': 39}`` from ``39 passed in 0.8s``."""
    lines = [line for line in text.strip().splitlines() if _OUTCOME_RE.search(line)]
    if not lines:
        return {}
    return {
        kind.rstrip("s") if kind.startswith("error") else kind: int(n) for n, kind in _OUTCOME_RE.findall(lines[-1])
    }


def render_pyramid(counts: Mapping[str, int], layers: Sequence[tuple[str, str]] = LAYERS, width: int = 60) -> str:
    """The layers drawn as centred bars, widest at the bottom, each as wide as its share of the largest."""
    largest = max(counts.values(), default=0) or 1
    label_width = max(len(name) for name, _ in layers)
    lines = []
    for name, _ in reversed(layers):  # the top of the pyramid first
        n = counts.get(name, 0)
        bar = "█" * max(1 if n else 0, round(width * n / largest))
        lines.append(f"{name:>{label_width}} │{bar:^{width}}│ {n}")
    return "\n".join(lines)
