"""The ``privacy`` demo (C59) runs on a fresh state and shows what it claims."""

from __future__ import annotations

import re

import pytest

from core.context import LabContext
from lab.demos.privacy import PERSON
from monitoring.privacy import audit_entries

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_privacy_demo_finds_no_raw_id_rotates_erases_and_applies_retention(run_demo, ctx: LabContext) -> None:
    out = run_demo("privacy", ctx, width=220)
    assert re.search(rf"raw id {re.escape(PERSON)}\s+│ 0\s+│ \d+", out)  # the raw id is in no file
    assert re.search(r"user_key [0-9a-f]{32}\s+│ [1-9]\d*\s+│", out)  # its keyed hash is
    first, second = (int(m) for m in re.findall(r"\((?:first|second) secret\)\s+│ (\d+)", out))
    assert (first, second) == (2, 2)  # two requests before the rotation, two after, under different keys
    assert re.search(r"✔ erasure: 4 prediction rows, 4 feedback rows, 0 report folders.*now hold 0 rows", out)
    assert re.search(r"✔ as if run at .*retention: [1-9]\d* prediction rows", out)
    for store in ("backups", "models already trained", "PostgreSQL"):
        assert store in out
    assert PERSON not in " ".join(str(e) for e in audit_entries(ctx.settings.state))
    assert [e["action"] for e in audit_entries(ctx.settings.state)] == ["erasure", "retention"]
