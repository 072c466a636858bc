"""The ``approval`` demo (C60) runs on a fresh state, refuses what it says and promotes only on approval."""

from __future__ import annotations

import re

import pytest

from core.context import LabContext
from pipelines.registry import audit_log, current_aliases

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_approval_demo_refuses_then_promotes_on_another_persons_approval(run_demo, ctx: LabContext) -> None:
    out = run_demo("approval", ctx, width=200)
    for refusal in (
        "refused: promotion with no approval",
        "refused: promotion while the request is pending",
        "refused: alice approving her own request",
        "refused: a process approving",
    ):
        assert f"✔ {refusal}" in out
    assert "NOT refused" not in out
    assert "bob approved: champion v1 → v2" in out
    assert current_aliases(ctx.settings) == {"champion": "2", "previous": "1"}
    assert [e.action for e in audit_log(ctx.settings)][-5:-3] == ["request_approval", "approve"]
    widest = int(re.search(r"widest line: (\d+) characters", out).group(1))  # type: ignore[union-attr]
    assert widest <= 80
    assert "| approved_by | bob |" in out
