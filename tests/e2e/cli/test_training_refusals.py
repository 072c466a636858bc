"""`train` refuses a file it cannot read the way `validate` does: one short refusal, no traceback (issue 20).

Each case runs the real CLI in a subprocess on a fresh project (no data ingested): a missing raw file, a
latin-1 file and an empty file end in the same two-line refusal. Before the load step was guarded, the
latin-1 file ended in three tracebacks (the load task's retries) with the file's bytes dumped into the log.
A params file that does not hold together is refused with its list of problems, before any command runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[3]
CLI = str(Path(sys.executable).with_name("mlops-lab"))
HEADER = "sepal_length,sepal_width,petal_length,petal_width,species\n"
LATIN_ROW = "5.1,3.5,1.4,0.2,s\xe9tosa-fake-marker\n"  # é in latin-1: the byte 0xe9, never valid UTF-8 here


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    env = {**os.environ, "MLOPS_PROJECT_DIR": str(root), "MLOPS_STATE_DIR": str(root / ".state"), "COLUMNS": "100"}
    for key in [k for k in env if k.startswith("PREFECT_") or k in ("MLOPS_PARAMS_FILE", "MLOPS_MODEL_NAME")]:
        del env[key]
    return root, env


def _train(project: tuple[Path, dict[str, str]], *args: str) -> str:
    root, env = project
    done = subprocess.run([CLI, "train", *args], cwd=root, env=env, capture_output=True, text=True, timeout=300)
    said = done.stdout + done.stderr
    assert done.returncode == 1, said
    assert "cannot read the data: nothing was trained or registered" in said
    assert "Traceback" not in said
    assert len(said.strip().splitlines()) <= 4, said
    return said


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ((HEADER + LATIN_ROW).encode("latin-1"), "is not UTF-8 text (byte 0xe9"),
        (b"", "is empty: no header, no rows"),
        (HEADER.encode(), "has a header but no rows"),
    ],
    ids=["latin-1", "empty", "header-only"],
)
def test_an_unreadable_training_file_is_one_short_refusal(project, content: bytes, expected: str) -> None:
    data = project[0] / "mine.csv"
    data.write_bytes(content)
    said = _train(project, "--data", str(data))
    assert expected in said
    assert "fake-marker" not in said  # the file's bytes stay out of the output


def test_train_on_a_fresh_clone_names_mlops_lab_ingest(project) -> None:
    said = _train(project)
    assert "data file not found" in said
    assert "run `mlops-lab ingest` first" in said


def test_a_params_file_that_does_not_hold_together_lists_its_problems_without_a_traceback(project) -> None:
    root, env = project
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["dataset"]["features"] = {"alcohol": {"min": 10.0, "max": 15.0}}  # only `dataset` changed, as users do
    bad = root / "wine-params.yaml"
    bad.write_text(yaml.safe_dump(raw))
    env = {**env, "MLOPS_PARAMS_FILE": str(bad)}
    done = subprocess.run([CLI, "validate", str(bad)], cwd=root, env=env, capture_output=True, text=True, timeout=120)
    said = done.stdout + done.stderr
    assert done.returncode == 1, said
    assert f"invalid parameters in {bad}: 7 problem(s), nothing was run" in said
    assert "gate.directional[0].feature: unknown column(s) ['petal_length']" in said
    assert "Traceback" not in said
