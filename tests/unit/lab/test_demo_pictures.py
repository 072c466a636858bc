"""The docs' operational pictures are the demos' own: copied from their report folders, and all embedded."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.paths import REPO
from lab.demo_pictures import PICTURES, copy_pictures


def test_pictures_are_copied_from_the_report_folder_and_a_missing_one_is_named(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    (reports / "ab-test").mkdir(parents=True)
    (reports / "ab-test" / "ab-interval.png").write_bytes(b"\x89PNG drawn by the demo")
    written = copy_pictures(reports, PICTURES["ab-test"], tmp_path / "docs")
    assert written == [tmp_path / "docs" / "ab-interval.png"]
    assert written[0].read_bytes() == b"\x89PNG drawn by the demo"
    with pytest.raises(FileNotFoundError, match=r"canary/episode-1-promote\.png"):
        copy_pictures(reports, PICTURES["canary"], tmp_path / "docs")


def test_the_operations_page_embeds_every_picture_and_each_is_committed() -> None:
    page = (REPO / "docs" / "operations-pictures.md").read_text(encoding="utf-8")
    embedded = set(re.findall(r"!\[[^\]]*\]\(operations/([^)]+)\)", page))
    names = {name for wanted in PICTURES.values() for name in wanted.values()}
    assert embedded == names
    assert "mlops-lab demo-pictures" in page
    for name in names:
        assert (REPO / "docs" / "operations" / name).read_bytes()[:4] == b"\x89PNG", name
