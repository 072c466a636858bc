"""The ``immutable-infra`` demo (C29, C46, C17) runs on a fresh state and shows what it claims.

It shows the tags for this checkout and the state's champion (trained by the demo on the fresh state),
the champion's pyfunc signature, a scratch git repository showing what moves a tag, the verdicts on
moving references and on every image of docker/compose.yaml, and hadolint run live. The repository
under test may be dirty while someone works in it, so the assertions accept both a clean and a dirty
checkout and check the tag format instead of a fixed sha.
"""

from __future__ import annotations

import re

import pytest

from core.context import LabContext
from pipelines.registry import current_aliases

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_immutable_infra_demo_tags_by_commit_and_champion_and_refuses_latest(run_demo, ctx: LabContext) -> None:
    out = run_demo("immutable_infra", ctx, width=220)
    champion = current_aliases(ctx.settings)["champion"]  # trained by the demo on the fresh state
    sha = re.search(r"commit ([0-9a-f]{12}), champion v(\d+)", out)
    assert sha is not None
    assert sha.group(2) == champion
    dirty = r"(?:-dirty)?"
    assert re.search(rf"mlops-lab-api\s+│ {sha.group(1)}-m{champion}{dirty}\s+│ docker/api\.Dockerfile", out)
    assert re.search(rf"mlops-lab-mlflow\s+│ {sha.group(1)}{dirty}\s+│ docker/mlflow\.Dockerfile", out)
    # packaging (C17): the champion as an MLflow pyfunc whose signature names the contract's features
    assert "flavours: python_function, sklearn" in out
    assert (
        "signature inputs: sepal_length: double, sepal_width: double, petal_length: double, petal_width: double" in out
    )
    assert "second format: ONNX, onnx.status=passed (onnx/model.onnx" in out  # exported and parity-checked (C54)
    # the scratch repository: same inputs, same tag; a promotion moves the API tag only; a commit moves all
    table = re.findall(r"│ (commit [AB][^│]*?)\s+│ ([0-9a-f]{12}-m\d)\s+│ ([0-9a-f]{12})\s+│", out)
    assert [row[0] for row in table] == [
        "commit A, champion v3",
        "commit A, champion v3, built again",
        "commit A, champion v4 (a promotion)",
        "commit B, champion v4 (a commit)",
    ], out
    first, again, promoted, committed = table
    assert first[1:] == again[1:]
    assert promoted[1] != first[1]
    assert promoted[1].endswith("-m4")
    assert promoted[2] == first[2]
    assert committed[1] != promoted[1]
    assert committed[2] != first[2]
    assert "✘ dirty worktree refused: the worktree has 1 uncommitted change(s) (serve.py)" in out
    assert re.search(r"with --allow-dirty: [0-9a-f]{12}-m4-dirty", out)
    # moving references refused, exact ones accepted, and every compose image checked
    assert re.search(r"│ python\s+│ no tag, so Docker pulls `latest`", out)
    assert re.search(r"│ python:latest\s+│ `latest` moves", out)
    assert re.search(r"│ python:3\.11\s+│ 3\.11 is a series", out)
    assert re.search(r"│ python:3\.11\.7-slim-bookworm\s+│ accepted: exact", out)
    assert re.search(r"│ api\s+│ \$\{API_IMAGE\}\s+│ computed by `mlops-lab images tags`", out)
    assert re.search(r"│ prometheus\s+│ prom/prometheus:v\d+\.\d+\.\d+\s+│ accepted: exact", out)
    assert "✔ no service runs a moving tag" in out
    # hadolint, live: ours clean, the careless one refused with the rules that explain why
    assert "✔ docker/*.Dockerfile (3 files): no finding" in out
    for rule in ("DL3007", "DL3008", "DL3025"):
        assert rule in out
    assert re.search(r"✔ hadolint refuses it with \d+ findings \(exit code 1\)", out)
