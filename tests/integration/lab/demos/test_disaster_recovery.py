"""The disaster-recovery demo (C50): back up, lose the state, refuse a damaged copy, restore, same service.

The test runs the demo module on a temporary state and asserts the lines that carry its point. The
demo must also leave the caller's own state alone (it drills on a stand-in folder) and work again on
a second run, when its stand-in already holds a champion and a log.
"""

from __future__ import annotations

import hashlib
import re

import pytest

from core.context import LabContext

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_disaster_recovery_demo_restores_the_same_service(run_demo, ctx: LabContext) -> None:
    own_registry = ctx.settings.state / "mlflow.db"
    before = digest(own_registry)
    for attempt in range(2):  # the second run starts from the stand-in the first one restored
        out = run_demo("disaster_recovery", ctx, width=220)
        assert re.search(r"✔ .*mlops-lab-backup-\d{8}T\d{6}Z\.tar\.gz \(\d+ KiB\)", out), attempt
        if attempt == 0:
            assert "manifest: champion v1, 20 predictions, 20 feedback" in out
        assert re.search(r"manifest: champion v1, \d+ predictions, \d+ feedback, a sha256 for each of \d+ members", out)
        assert "✘ deleted" in out
        assert re.search(r"✔ refused: .*damaged\.tar\.gz.*(not a readable backup|does not match the manifest)", out)
        assert re.search(r"✔ \d+ members matched their sha256; installed mlflow\.db, mlartifacts, predictions\.db", out)
        assert "✔ MLflow loads champion v1; predict_proba on 20 rows: identical, bit for bit" in out
        assert re.search(r"✔ prediction log: (\d+) predictions, \d+ feedback, as backed up", out)
        assert "✔ the API answers the same 20 requests exactly as before the loss" in out
        assert "✔ refused: state already exists" in out
        assert out.count("✘") == 1  # only the simulated loss
    assert digest(own_registry) == before  # the caller's state was never the one deleted
    assert not (ctx.settings.state / "predictions.db").exists()
    backups = list((ctx.settings.state / "backups").glob("*.tar.gz"))
    assert len(backups) == 1  # one archive per run, the damaged copy removed
