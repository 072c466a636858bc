"""The quiz's scoring rule and question picking, on fixed key points (no catalog file needed)."""

from __future__ import annotations

import pytest

from lab.catalog import Concept, load_catalog
from lab.quiz import key_terms, pick_question, score_answer, stem

POINTS = (
    "The routing key (`X-User-Id`) is hashed with blake2b into a uniform bucket; the challenger serves iff "
    "bucket < weight, identical in every replica.",
    "Raising the weight only moves users from champion to challenger, never back (monotone).",
    "Each check needs its own minimum sample; with too little data the verdict is inconclusive and the "
    "controller waits.",
)
GOOD = (
    "Hash the X-User-Id with blake2b into a uniform bucket and serve the challenger when the bucket is below "
    "the weight, the same in every replica. Raising the weight moves users from the champion to the challenger "
    "only, monotone. Every check needs a minimum sample; too little data is inconclusive, so the controller waits."
)
POOR = "Deploy the new model to some servers and watch the dashboards for a while."


def concept(cid: str, questions: tuple[str, ...]) -> Concept:
    slug, title = f"slug-{cid.lower()}", f"Title {cid}"
    return Concept(cid, slug, title, f"Answer {cid}.", questions, POINTS, "", (), "mlops-lab demo x", (), ())


def test_stem_strips_one_suffix_and_keeps_short_stems() -> None:
    assert stem("buckets") == stem("bucket") == "bucket"
    assert stem("routing") == stem("route") == "rout"
    assert stem("previous") == "previous"  # the no-op rule keeps "-us"
    assert stem("data") == "data"  # too short to strip


def test_terms_are_long_words_minus_stop_words_plus_backticked_identifiers() -> None:
    terms = key_terms(POINTS[0])
    assert "x-user-id" in terms
    assert "blake2b" in terms
    assert "bucket" in terms
    assert "the" not in terms
    assert "every" not in terms
    assert "into" not in terms
    assert len(terms) == len(set(terms))


def test_a_good_answer_covers_more_points_than_a_poor_one() -> None:
    good, poor = score_answer(GOOD, POINTS), score_answer(POOR, POINTS)
    assert len(good.covered) == 3
    assert len(poor.covered) == 0
    assert all(g.share > p.share for g, p in zip(good.points, poor.points, strict=True))


def test_an_empty_answer_covers_nothing() -> None:
    result = score_answer("", POINTS)
    assert result.covered == []
    assert len(result.missed) == len(POINTS)
    assert all(p.found == () for p in result.points)


def test_identifiers_match_verbatim_and_the_threshold_decides() -> None:
    point = "Set `min_requests` and `min_feedback`."
    assert score_answer("min_requests and min_feedback", [point], threshold=1.0).covered
    assert not score_answer("minimum requests", [point], threshold=1.0).covered
    with pytest.raises(ValueError, match="threshold"):
        score_answer("x", [point], threshold=0)


def test_a_seeded_pick_is_stable_and_seeds_spread_over_the_catalog() -> None:
    catalog = load_catalog()
    picks = [pick_question(catalog, seed) for seed in range(20)]
    again = [pick_question(catalog, seed) for seed in range(20)]
    assert [(q.concept.id, q.index) for q in picks] == [(q.concept.id, q.index) for q in again]
    assert len({q.concept.id for q in picks}) > 5
    assert all(q.text == q.concept.questions[q.index] for q in picks)


def test_one_concept_is_only_asked_its_own_questions() -> None:
    c = concept("C99", ("first?", "second?", "third?"))
    asked = {pick_question([c], seed).text for seed in range(30)}
    assert asked == set(c.questions)
    with pytest.raises(ValueError, match="no question"):
        pick_question([concept("C98", ())], 0)
