"""The ``k8s`` demo renders both overlays, finds them valid and clean, catches planted breakage,
shows the dev/prod differences and the capacity plan prod carries.

It needs no state and no server, only kubectl (required, like the manifest tests) and the committed
files; it sits with the demo tests because it runs the whole narrated demo.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.context import LabContext
from core.params import Params
from core.settings import Settings
from ops.capacity import build_plan
from ops.k8s_checks import CHECKS

REPO = Path(__file__).resolve().parents[4]

pytestmark = [pytest.mark.integration]


@pytest.fixture
def ctx(tmp_path: Path, params: Params) -> LabContext:
    """The demo reads only committed files: no MLflow store needed, just a context to pass."""
    return LabContext(settings=Settings(project_dir=REPO, state_dir=tmp_path / "state"), params=params)


def test_k8s_demo_validates_polices_compares_and_sizes(run_demo, ctx: LabContext) -> None:
    out = run_demo("k8s", ctx, width=200)
    for env in ("dev", "prod"):
        assert re.search(rf"{env}: \d+ objects, \d+ kinds", out)
        assert re.search(rf"✔ {env}: \d+ core objects valid, 2 Argo Rollouts objects valid", out)
    for check in CHECKS:  # the violations table: zero for every check in both overlays
        assert re.search(rf"│ {re.escape(check)}\s+│ 0\s+│ 0\s+│", out), check
    assert "✔ no violations" in out
    # the planted breakage is caught, and nothing else is reported as broken
    assert "✘ caught: [images] Deployment/mlops-lab-api" in out
    assert "moving tag latest" in out
    assert "✘ caught: [services] Service/mlflow" in out
    assert out.count("✘") == 2
    # dev vs prod: sizes, hosts and tags differ; generated names and the namespace do not show up
    assert re.search(r"Rollout/mlops-lab-api\s+│ replicas\s+│ 1\s+│ 2\s+│", out)
    assert re.search(r"rules\[0\]\.host\s+│ mlops-lab\.dev\.example\.com\s+│ mlops-lab\.example\.com", out)
    assert "mlops-lab-settings-" not in out.split("dev vs prod")[1]
    plan, row, _ = build_plan()
    assert f"{row.rps:,.0f} req/s" in out
    assert f"plan: {plan.replicas} pods x {plan.cpu_request_m}m CPU, HPA {plan.hpa_min}-{plan.hpa_max}" in out
    assert "✔ k8s/overlays/prod carries exactly this plan" in out
    assert re.search(r"│ 2\s+│ 33%\s+│ 33%\s+│ 50%\s+│", out)  # two pods: the first step is a third
