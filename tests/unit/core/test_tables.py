"""At 80 columns rows print as blocks that keep every identifier whole; wide terminals get a table."""

from __future__ import annotations

from rich.console import Console

from core.tables import STACK_BELOW, print_rows

HEADER = ("check", "status", "score", "summary")
ROWS = [
    ["prediction_drift", "[red]fired[/]", "0.031", "the predicted class shares moved: chi-square p 0.0003 < 0.01"],
    ["expect_column_values_to_be_between", "ok", "-", "every value in range"],
]


def _render(width: int) -> str:
    out = Console(width=width, record=True, color_system=None)
    print_rows(out, "monitoring", HEADER, ROWS, named=("score",))
    return out.export_text()


def test_at_80_columns_each_row_is_a_block_with_whole_identifiers() -> None:
    text = _render(80)
    assert "…" not in text
    assert "prediction_drift · fired · score 0.031" in text
    assert "expect_column_values_to_be_between · ok · score -" in text
    assert "  the predicted class shares moved: chi-square p 0.0003 < 0.01" in text  # the text, indented
    assert "┃" not in text  # no table


def test_wide_terminals_get_a_table_whose_identifiers_are_not_cut() -> None:
    text = _render(STACK_BELOW + 40)
    assert "┃ check" in text
    assert "expect_column_values_to_be_between" in text
    assert "prediction_drift" in text
    assert "…" not in text
