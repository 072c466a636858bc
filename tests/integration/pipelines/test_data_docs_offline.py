"""Great Expectations Data Docs list their validation results offline, named after the file checked.

Real GX runs write the site into a temporary folder; `pipelines.data_docs_offline` adds the plain list.
Headless Chromium (tests/browser.py) then opens the index from disk with the network blocked: the plain
list shows every run; GX's own page, as written, shows none (its tables come from CDN scripts).
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

from core.params import Params
from pipelines.data import ingest, read_csv
from pipelines.data_docs_offline import MARKER, index_rows, list_offline
from pipelines.training_steps import training_validation_name
from pipelines.validation import validate_file, validate_frame
from tests.browser import rendered_dom

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, params: Params) -> Path:
    """A Data Docs site with a passing `validate` run, a failing one, and a training run's refusal."""
    root = tmp_path_factory.mktemp("docs")
    good = ingest(params.dataset, params.ingest, root / "iris.csv")
    bad = root / "bad-batch.csv"
    frame = read_csv(good)
    frame.loc[:20, "sepal_length"] = 60.0
    frame.to_csv(bad, index=False)
    docs = root / "gx"
    assert validate_file(good, params.dataset, docs).success
    assert not validate_file(bad, params.dataset, docs).success
    refused = validate_frame(frame, params.dataset, docs, batch_name=training_validation_name(bad))
    assert not refused.success
    return docs / "data_docs" / "local_site" / "index.html"


def test_the_index_lists_every_run_by_the_file_it_checked(site: Path) -> None:
    results, suites = index_rows(site.read_text(encoding="utf-8"))
    assert sorted(r.cells[2] for r in results) == ["bad-batch.csv", "iris.csv", "training:bad-batch.csv"]
    assert sorted(r.cells[0] for r in results) == ["Failed", "Failed", "Success"]
    assert [s.cells[0] for s in suites] == ["iris_contract"]
    assert all((site.parent / unquote(r.link)).is_file() for r in [*results, *suites])  # each link opens a page


def test_the_plain_list_is_written_once_however_often_it_is_rebuilt(site: Path) -> None:
    assert list_offline(site) == 3
    assert list_offline(site) == 3
    assert site.read_text(encoding="utf-8").count(f'<section id="{MARKER}"') == 1


def test_offline_a_browser_shows_the_runs_and_gxs_own_page_shows_none(site: Path, tmp_path: Path) -> None:
    dom = rendered_dom(site.as_uri(), tmp_path / "profile")
    cells = re.findall(r"<td>([^<]*)</td>", dom)
    assert {"iris.csv", "bad-batch.csv", "training:bad-batch.csv"} <= set(cells)
    original = tmp_path / "gx-original.html"  # the page as GX writes it, without the plain list
    original.write_text(re.sub(rf'<section id="{MARKER}".*?</section>', "", site.read_text("utf-8"), flags=re.S))
    shown = re.findall(r"<td>([^<]*)</td>", rendered_dom(original.as_uri(), tmp_path / "profile"))
    assert "iris.csv" not in shown  # offline, GX's CDN-drawn tables stay empty: the control
