"""The concept catalog and the demo mechanism.

The last four tests check the catalog against the repository: every code path, listed test and
demo must exist. They are parametrized per concept, so a failure names the entry to fix.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console

from core.context import LabContext
from core.settings import Settings
from lab.catalog import (
    ANSWER_MAX,
    ANSWER_SHAPE,
    DEMO_PREFIX,
    KEY_POINTS,
    QUESTIONS,
    CatalogError,
    Concept,
    UnknownConceptError,
    code_summary,
    find,
    load_catalog,
    parse_catalog,
    search,
)
from lab.demos import DEMOS, DemoNotBuiltError, UnknownDemoError, load_demo, resolve_demo, run_demo
from lab.refs import code_ref_problem, node_id_exists

REPO = Path(__file__).resolve().parents[3]
CONCEPTS = load_catalog()
BY_ID = {c.id: c for c in CONCEPTS}
per_concept = pytest.mark.parametrize("concept", CONCEPTS, ids=lambda c: c.id)

GOOD_ENTRY = """
- id: C99
  slug: sample
  title: Sample
  answer: Because it is checked.
  questions: [why, how, when]
  key_points: [a, b, c, d, e]
  at_scale: It runs on more machines.
  code: [lab/catalog.py]
  demo: mlops-lab demo sample
  tests: []
  related: []
"""


# ---- the file itself -------------------------------------------------------------------------
def test_packaged_catalog_parses_into_concepts() -> None:
    assert CONCEPTS
    assert all(isinstance(c, Concept) for c in CONCEPTS)
    assert load_catalog(REPO / "lab" / "catalog.yaml") == CONCEPTS


def test_ids_are_unique_well_formed_and_in_order() -> None:
    ids = [c.id for c in CONCEPTS]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"C\d{2}", i) and 1 <= int(i[1:]) <= 56 for i in ids)  # issue 19 adds C54-C56
    assert ids == sorted(ids)
    assert len({c.slug for c in CONCEPTS}) == len(CONCEPTS)


def test_this_rounds_concepts_are_present() -> None:
    expected = {f"C{n:02d}" for n in range(3, 17)} | {"C40", "C41"}
    assert expected <= set(BY_ID)


@per_concept
def test_every_entry_has_the_required_content(concept: Concept) -> None:
    assert concept.title
    assert concept.answer, "one line answering the first question"
    assert len(concept.answer) <= ANSWER_MAX == 140
    assert "\n" not in concept.answer
    assert len(concept.questions) == QUESTIONS == 3
    assert KEY_POINTS == (5, 8)
    assert 5 <= len(concept.key_points) <= 8
    assert 150 <= len(concept.at_scale) <= 800, "at_scale is a short paragraph of 2-4 sentences"
    assert concept.code, "name at least one code path"
    assert concept.demo.startswith(DEMO_PREFIX)
    assert concept.demo_name
    assert concept.id not in concept.related
    assert all(re.fullmatch(r"C\d{2}", r) and 1 <= int(r[1:]) <= 56 for r in concept.related)


@pytest.mark.parametrize("concept", CONCEPTS, ids=lambda c: c.id)
def test_every_answer_defines_the_concept_against_its_neighbour_before_saying_how_we_do_it(concept: Concept) -> None:
    """`<Term>: <what it is>, unlike <nearest neighbour> ...; here <how this system does it>`."""
    shape = ANSWER_SHAPE.fullmatch(concept.answer)
    assert shape, (
        f"{concept.id}: {concept.answer!r} does not read '<Term>: <definition, unlike X>; here <how we do it>'"
    )
    assert not shape["definition"].startswith("unlike"), "define the concept before naming its neighbour"
    assert len(shape["how"]) >= 20, "say how this system does it, not only that it does"


def test_the_answer_shape_rejects_an_answer_that_starts_with_the_implementation() -> None:
    assert ANSWER_SHAPE.fullmatch(
        "Canary: a small share first, unlike blue-green's one switch; here a hashed user key."
    )
    for wrong in (
        "A stable hash (blake2b) buckets users; the controller climbs 10→25→50→100 %.",  # no term, no definition
        "Canary: a small share of users first; here a hashed user key and stepped weights.",  # no neighbour
        "Canary: a small share first, unlike blue-green, with a hashed user key and stepped weights.",  # no how
    ):
        assert not ANSWER_SHAPE.fullmatch(wrong), wrong


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.replace("  related: []\n", ""), "missing fields"),
        (lambda t: t.replace("id: C99", "id: X1"), "id must look like C06"),
        (lambda t: t.replace("slug: sample", "slug: Sample Entry"), "slug"),
        (lambda t: t.replace("[a, b, c, d, e]", "\n    - a flow is a shell: it wires tasks"), "key_points"),
        (lambda t: t.replace("[a, b, c, d, e]", "[a, b, c, d]"), "entry C99: `key_points` has 4 entries; a strong"),
        (lambda t: t.replace("[a, b, c, d, e]", "[a, b, c, d, e, f, g, h, i]"), "`key_points` has 9 entries"),
        (lambda t: t.replace("[why, how, when]", "[why, how]"), "entry C99: `questions` has 2 entries"),
        (lambda t: t.replace("  at_scale: It runs on more machines.\n", ""), "entry C99: missing fields ['at_scale']"),
        (lambda t: t.replace("It runs on more machines.", "''"), "entry C99: `at_scale` must be a non-empty string"),
        (lambda t: t.replace("It runs on more machines.", "[a, b]"), "`at_scale` must be a non-empty string"),
        (lambda t: t.replace("  answer: Because it is checked.\n", ""), "entry C99: missing fields ['answer']"),
        (lambda t: t.replace("Because it is checked.", "''"), "entry C99: `answer` must be a non-empty string"),
        (
            lambda t: t.replace("Because it is checked.", "x" * 141),
            "entry C99: `answer` has 141 characters; keep it to one line of at most 140",
        ),
        (lambda t: t.replace("mlops-lab demo sample", "make demo"), "demo must be the exact command"),
        (lambda t: t + t.replace("slug: sample", "slug: other"), "duplicate id 'C99'"),
        (lambda t: t + "  owner: me\n", "unknown fields ['owner']"),
        (lambda t: "id: C99\n", "YAML list"),
        (lambda t: t.replace("title: Sample", "title: [Sample"), "not valid YAML"),
    ],
    ids=[
        "missing",
        "bad-id",
        "bad-slug",
        "unquoted-colon",
        "four-key-points",
        "nine-key-points",
        "two-questions",
        "no-at-scale",
        "empty-at-scale",
        "list-at-scale",
        "no-answer",
        "empty-answer",
        "long-answer",
        "bad-demo",
        "duplicate",
        "unknown-field",
        "not-a-list",
        "bad-yaml",
    ],
)
def test_malformed_catalogs_are_rejected_with_the_fix(change: Callable[[str], str], message: str) -> None:
    assert parse_catalog(GOOD_ENTRY)[0].demo_name == "sample"
    with pytest.raises(CatalogError, match=re.escape(message)):
        parse_catalog(change(GOOD_ENTRY))


def test_an_answer_of_exactly_the_limit_is_accepted_and_folded_to_one_line() -> None:
    entry = GOOD_ENTRY.replace("answer: Because it is checked.", "answer: >-\n    " + "y" * 70 + "\n    " + "z" * 69)
    [concept] = parse_catalog(entry)
    assert concept.answer == "y" * 70 + " " + "z" * 69
    assert len(concept.answer) == ANSWER_MAX


# ---- lookup -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "query", ["C06", "c06", "c6", "6", " C6 ", "data-validation", "Data validation", "DATA VALIDATION"]
)
def test_find_by_id_slug_or_title(query: str) -> None:
    assert find(query).id == "C06"


def test_find_by_unique_title_word() -> None:
    assert find("registry").id == "C12"
    assert find("rollback").id == "C15"


def test_find_explains_ambiguous_and_unknown_queries() -> None:
    with pytest.raises(UnknownConceptError, match=r"several concepts.*C12 Model registry"):
        find("model")
    with pytest.raises(UnknownConceptError, match="no concept C99"):
        find("C99")
    with pytest.raises(UnknownConceptError, match="concepts --search"):
        find("quantum blockchain")


def test_search_reads_the_at_scale_paragraph() -> None:
    c28 = find("C28")
    assert "thundering herd" in c28.at_scale
    assert "thundering" not in " ".join((*c28.questions, *c28.key_points)).lower()
    assert [c.id for c in search("thundering herd")] == ["C28"]


def test_search_reads_the_answer() -> None:
    concept = parse_catalog(GOOD_ENTRY)
    assert search("checked", concept) == concept
    assert search("because checked", concept) == concept


def test_search_filters_and_ranks_name_hits_first() -> None:
    hits = [c.id for c in search("registry")]
    assert hits[0] == "C12"
    assert {"C14", "C15"} <= set(hits)
    assert "C07" not in hits
    assert [c.id for c in search("GREAT expectations data docs")] == ["C07"]
    assert search("no-such-word-anywhere") == []


# ---- code summaries (parsed, never imported) ----------------------------------------------------
def test_code_summary_reads_docstrings_and_comments(tmp_path: Path) -> None:
    (tmp_path / "mod.py").write_text(
        textwrap.dedent('''\
            """Module summary.

            More text."""
            import does_not_exist_anywhere

            class Gate:
                def decide(self):
                    """Decide it."""

            LIMIT = 3
            '''),
    )
    (tmp_path / "conf.yaml").write_text("# Knobs for things.\nkey: 1\n")
    (tmp_path / "plain.lock").write_text("version = 1\n# not a header\n")
    assert code_summary("mod.py", tmp_path) == "Module summary."
    assert code_summary("mod.py::Gate.decide", tmp_path) == "Decide it."
    assert code_summary("mod.py::LIMIT", tmp_path) == ""
    assert code_summary("mod.py::missing", tmp_path) is None
    assert code_summary("conf.yaml", tmp_path) == "Knobs for things."
    assert code_summary("plain.lock", tmp_path) == ""
    assert code_summary("nowhere.py", tmp_path) is None


# ---- demos ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "demo"),
    [
        ("data-validation", "data-validation"),
        ("C07", "data-validation"),
        ("lineage", "reproducibility"),
        ("Rollback", "rollback"),
    ],
)
def test_resolve_demo_accepts_demo_names_ids_and_slugs(name: str, demo: str) -> None:
    assert resolve_demo(name) == demo


def test_unknown_demo_lists_every_available_demo() -> None:
    with pytest.raises(UnknownDemoError) as err:
        resolve_demo("nope")
    assert all(name in str(err.value) for name in DEMOS)


@pytest.mark.parametrize("module_path", ["lab.demos.no_such_demo_module", "no_such_package.demo"])
def test_missing_demo_module_is_not_built_yet(monkeypatch: pytest.MonkeyPatch, module_path: str) -> None:
    monkeypatch.setitem(DEMOS, "ghost", module_path)
    with pytest.raises(DemoNotBuiltError, match=f"not built yet.*{re.escape(module_path)}"):
        run_demo("ghost")


def _demo_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, body: str) -> None:
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(body))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(DEMOS, name, name)


def test_demo_module_without_run_is_not_built_yet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _demo_module(tmp_path, monkeypatch, "catalog_demo_without_run", "RUN = None\n")
    with pytest.raises(DemoNotBuiltError, match="has no `run"):
        load_demo("catalog_demo_without_run")


def test_run_demo_narrates_with_the_context_and_reports_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    _demo_module(
        tmp_path,
        monkeypatch,
        "catalog_fake_demo",
        """
        CALLS = []

        def run(n, ctx):
            CALLS.append(ctx)
            n.step("fake step ran")
        """,
    )
    console = Console(record=True, width=400)
    elapsed = run_demo("catalog_fake_demo", console=console, settings=settings)

    import catalog_fake_demo

    [ctx] = catalog_fake_demo.CALLS
    assert isinstance(ctx, LabContext)
    own = settings.state / "demos" / "catalog_fake_demo"
    assert ctx.settings == settings.model_copy(update={"state_dir": own})  # the demo's own state, nothing else
    assert ctx.params.dataset.name == "iris"
    text = console.export_text()
    assert "fake step ran" in text
    assert f"demo catalog_fake_demo finished in {elapsed:.1f} s" in text
    assert f"this demo's own state: {own}" in text


# ---- the catalog against the repository (fail until every named file exists) -------------------
@per_concept
def test_every_code_path_exists(concept: Concept) -> None:
    missing = [problem for ref in concept.code if (problem := code_ref_problem(ref, REPO))]
    assert not missing, f"{concept.id}: fix lab/catalog.yaml or write the code: {missing}"


def _test_exists(node_id: str) -> bool:
    """Whether a pytest node id exists in this repository (the rule lives in lab/refs.py)."""
    return node_id_exists(node_id, REPO)


@per_concept
def test_every_listed_test_exists(concept: Concept) -> None:
    missing = [t for t in concept.tests if not _test_exists(t)]
    assert not missing, f"{concept.id}: these test ids do not exist: {missing}"


@per_concept
def test_every_concept_names_a_test(concept: Concept) -> None:
    assert concept.tests, f"{concept.id}: list the tests that fail if this concept stops working"


@per_concept
def test_every_demo_is_registered(concept: Concept) -> None:
    assert concept.demo_name in DEMOS, f"{concept.id}: add {concept.demo_name!r} to DEMOS in lab/demos/__init__.py"
    try:
        load_demo(concept.demo_name)
    except DemoNotBuiltError as err:
        pytest.fail(f"{concept.id}: {err}")


def test_node_id_check_accepts_real_ids_and_rejects_fakes() -> None:
    here = "tests/unit/lab/test_catalog.py"
    assert _test_exists(f"{here}::test_find_by_id_slug_or_title[C06]")
    assert _test_exists(here)
    assert not _test_exists(f"{here}::test_no_such_thing")
    assert not _test_exists(f"{here}::_test_exists")
    assert not _test_exists("tests/unit/test_missing.py::test_x")


def test_code_summary_never_cuts_a_sentence_at_a_line_break(tmp_path: Path) -> None:
    """`mlops-lab explain` prints this summary: a first sentence that wraps is joined, not cut mid-sentence."""
    (tmp_path / "wrapped.py").write_text(
        textwrap.dedent('''\
            """Load the model, e.g. the champion, and swap it in
            without dropping a request. Later sentences stay out.

            A second paragraph."""
            '''),
    )
    (tmp_path / "heading.py").write_text('"""A title line without a full stop\n\nBody."""\n')
    (tmp_path / "job.yaml").write_text(
        "# The scheduled look at production: drift and decay\n# checks. Details.\nkind: Job\n"
    )
    (tmp_path / "run").write_text("#!/usr/bin/env bash\n# Run the CI steps in\n# order.\nset -e\n")
    assert (
        code_summary("wrapped.py", tmp_path)
        == "Load the model, e.g. the champion, and swap it in without dropping a request."
    )
    assert code_summary("heading.py", tmp_path) == "A title line without a full stop"
    assert code_summary("job.yaml", tmp_path) == "The scheduled look at production: drift and decay checks."
    assert code_summary("run", tmp_path) == "Run the CI steps in order."
