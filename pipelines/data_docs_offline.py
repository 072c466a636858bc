"""Great Expectations Data Docs that list their validation results without a network.

GX's index page draws its two lists (validation results, expectation suites) with jQuery and
bootstrap-table loaded from CDNs, so opened offline it shows empty tabs. The rows themselves are in the
page, as the ``data: [...]`` of each ``bootstrapTable(...)`` call. `list_offline` reads them back and
writes them as a plain HTML list at the top of the page: status, time, run name (the file checked),
suite, each linking to its result page, which is static HTML and readable offline. When the CDN
scripts do load, a tiny inline script hides the plain list, so online readers see GX's page as before.
"""

from __future__ import annotations

import ast
import html
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MARKER = "mlops-offline-index"
_DATA = re.compile(r"^\s*data: (\[.*\]),\s*$", re.MULTILINE)  # one bootstrapTable call's rows, one line
_SECTION = re.compile(rf"<section id=\"{MARKER}\".*?</section>\s*<script>.*?</script>\s*", re.DOTALL)
_HIDE_WHEN_ONLINE = (
    "<script>window.addEventListener('load', function () {"
    " if (window.jQuery && jQuery.fn && jQuery.fn.bootstrapTable) {"
    f" document.getElementById('{MARKER}').hidden = true; }} }});</script>\n"
)


@dataclass(frozen=True)
class IndexRow:
    """One row of a Data Docs list: what to show and the page it links to (relative to the index)."""

    cells: tuple[str, ...]
    link: str


def index_rows(page: str) -> tuple[list[IndexRow], list[IndexRow]]:
    """(validation results, expectation suites) as listed in the index page's table data."""
    results: list[IndexRow] = []
    suites: list[IndexRow] = []
    for match in _DATA.finditer(page):
        for row in ast.literal_eval(match.group(1)):  # GX writes Python literals: literal_eval runs no code
            if "run_time" in row:
                results.append(_result_row(row))
            elif "expectation_suite_name" in row:
                suites.append(IndexRow((_text(row["expectation_suite_name"]),), str(row["_table_row_link_path"])))
    return results, suites


def _result_row(row: dict[str, Any]) -> IndexRow:
    status = str(row.get("_validation_success_text", ""))
    suite = str(row.get("_expectation_suite_name_sort", _text(row.get("expectation_suite_name", ""))))
    cells = (status, str(row.get("run_time", "")), _text(row.get("run_name", "")), suite)
    return IndexRow(cells, str(row["_table_row_link_path"]))


def _text(value: Any) -> str:
    """A cell's visible text: markup dropped, whitespace collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", str(value)).split())


def _table(title: str, header: tuple[str, ...], rows: list[IndexRow]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape(c)}</td>" for c in row.cells)
        + f'<td><a href="{html.escape(row.link)}">open</a></td></tr>'
        for row in rows
    )
    return f"<h3>{html.escape(title)}</h3><table border='1' cellpadding='4'><tr>{head}<th></th></tr>{body}</table>"


def list_offline(index: Path) -> int:
    """Write the index's lists as plain HTML at the top of its body; the number of validation results listed.

    Idempotent: a list written earlier is replaced. A page without ``<body>`` is left alone (0).
    """
    page = _SECTION.sub("", index.read_text(encoding="utf-8"))
    results, suites = index_rows(page)
    if "<body>" not in page:
        return 0
    section = (
        f'<section id="{MARKER}" style="font-family: sans-serif; margin: 1em">'
        "<h2>Data Docs</h2><p>This list needs no network; the interactive tables below load their scripts from "
        "a CDN and stay empty offline.</p>"
        + _table("Validation results", ("status", "run time", "run name", "expectation suite"), results)
        + _table("Expectation suites", ("expectation suite",), suites)
        + "</section>\n"
        + _HIDE_WHEN_ONLINE
    )
    index.write_text(page.replace("<body>", "<body>\n" + section, 1), encoding="utf-8")
    return len(results)
