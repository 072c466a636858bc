"""The test-pyramid parser and renderer, on fixed pytest output (C39)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.test_pyramid import (
    CollectOutputError,
    count_by_layer,
    engines_used,
    is_pyramid,
    parse_collect_output,
    parse_outcome,
    registered_markers,
    render_pyramid,
)

REPO = Path(__file__).resolve().parents[3]

COLLECT_OUTPUT = """\
tests/unit/serving/test_router.py::test_canary_share_matches_the_weight
tests/unit/serving/test_router.py::test_override_wins_in_every_strategy[canary]
tests/unit/serving/test_router.py::test_override_wins_in_every_strategy[shadow]
tests/unit/pipelines/test_fit.py::test_split_is_stratified_and_disjoint
tests/integration/serving/test_api.py::test_predict_one_row
tests/integration/serving/test_api.py::TestFeedback::test_feedback_is_idempotent
tests/e2e/cli/test_training.py::test_train_twice_then_refuse_a_corrupted_batch_then_reproduce
docs/test_elsewhere.py::test_outside_every_layer

8 tests collected in 1.23s
"""


def test_collect_output_is_parsed_into_node_ids_and_counted_per_layer() -> None:
    collected = parse_collect_output(COLLECT_OUTPUT)
    assert collected.reported == 8
    assert collected.errors == 0
    assert collected.node_ids[1] == "tests/unit/serving/test_router.py::test_override_wins_in_every_strategy[canary]"
    assert count_by_layer(collected.node_ids) == {"unit": 4, "integration": 2, "e2e": 1}


def test_collection_errors_are_reported() -> None:
    text = "tests/unit/test_a.py::test_x\n\n1 test collected, 2 errors in 0.10s\n"
    collected = parse_collect_output(text)
    assert (collected.reported, collected.errors) == (1, 2)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tests/unit/test_a.py::test_x\n", "no 'N tests collected' line"),
        ("tests/unit/test_a.py::test_x\n\n3 tests collected in 0.1s\n", "reported 3 tests but listed 1"),
    ],
)
def test_output_that_is_not_a_collection_is_refused(text: str, message: str) -> None:
    with pytest.raises(CollectOutputError, match=message):
        parse_collect_output(text)


def test_a_folder_prefix_does_not_capture_a_sibling_folder() -> None:
    assert count_by_layer(["tests/unit_extra/test_a.py::test_x", "tests/unit/test_a.py::test_y"])["unit"] == 1


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        ({"unit": 900, "integration": 200, "e2e": 1}, True),
        ({"unit": 900, "integration": 200, "e2e": 0}, False),  # no end-to-end test at all
        ({"unit": 100, "integration": 200, "e2e": 1}, False),  # an ice-cream cone
        ({"unit": 200, "integration": 200, "e2e": 1}, False),  # not strictly narrower
    ],
)
def test_is_pyramid_needs_strictly_narrower_layers_and_a_top(counts: dict[str, int], expected: bool) -> None:
    assert is_pyramid(counts) is expected


def test_markers_are_read_from_pytest_ini_options() -> None:
    text = '[tool.pytest.ini_options]\nmarkers = ["slow: takes long", "e2e: runs the CLI"]\n'
    assert registered_markers(text) == {"slow": "takes long", "e2e": "runs the CLI"}
    assert registered_markers("[project]\nname = 'x'\n") == {}
    real = registered_markers((REPO / "pyproject.toml").read_text())
    assert {"slow", "integration", "e2e", "load"} <= set(real)


def test_engines_are_found_by_the_code_that_starts_them() -> None:
    sources = {
        "a.py": "import mlflow\nfrom prefect import flow\n",
        "b.py": "def test_x(database_url):\n    subprocess.run(['uvicorn'])\n",
        "c.py": "def test_pure():\n    assert 1 + 1 == 2\n",
    }
    found = engines_used(sources)
    assert found["real MLflow store"] == 1
    assert found["real Prefect API"] == 1
    assert found["real PostgreSQL"] == 1
    assert found["real uvicorn server"] == 1
    assert "DVC" not in found


def test_outcome_is_read_from_the_last_summary_line() -> None:
    assert parse_outcome("....\n39 passed in 0.83s\n") == {"passed": 39}
    assert parse_outcome("F.\n1 failed, 1 passed, 2 errors in 1.2s\n") == {"failed": 1, "passed": 1, "error": 2}
    assert parse_outcome("no summary here") == {}


def test_render_draws_the_top_first_with_widths_by_share() -> None:
    lines = render_pyramid({"unit": 100, "integration": 50, "e2e": 1}, width=20).splitlines()
    assert [line.split("│")[0].strip() for line in lines] == ["e2e", "integration", "unit"]
    assert [line.count("█") for line in lines] == [1, 10, 20]
    assert lines[0].endswith("│ 1")
