"""docs/privacy.md stays true to the code: its tables, columns, settings, files and tests exist."""

from __future__ import annotations

import re
from pathlib import Path

from core.settings import Settings
from monitoring.privacy import AUDIT_FILE, REPORT_PREFIX
from serving.log_schema import metadata

REPO = Path(__file__).resolve().parents[3]
PAGE = (REPO / "docs" / "privacy.md").read_text(encoding="utf-8")


def test_every_listed_table_and_column_exists_and_every_personal_column_is_listed() -> None:
    listed = set(re.findall(r"`(predictions|feedback)\.(\w+)`", PAGE))
    columns = {(t.name, c.name) for t in metadata.tables.values() if t.name in ("predictions", "feedback") for c in t.c}
    assert listed <= columns, listed - columns
    names = ("user_key", "features", "prediction", "probabilities", "request_id", "sensitive_group")
    personal = {("predictions", n) for n in names}
    assert personal | {("feedback", "label")} <= listed


def test_every_setting_the_page_names_is_a_setting_and_the_defaults_are_the_real_ones() -> None:
    named = set(re.findall(r"`MLOPS_([A-Z_]+)`", PAGE))
    assert named, "the page names no settings"
    assert {n.lower() for n in named} <= set(Settings.model_fields), named
    fields = Settings.model_fields
    assert f"default {fields['retention_days'].default})" in PAGE
    assert f"default `{fields['retention_schedule'].default}`" in PAGE
    assert f"`<state>/{AUDIT_FILE.as_posix()}`" in PAGE
    assert f"`{REPORT_PREFIX}<stamp>`" in PAGE


def test_every_test_the_page_cites_exists() -> None:
    for path, name in re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", PAGE):
        assert f"def {name}(" in (REPO / path).read_text(encoding="utf-8"), f"{path}::{name}"
