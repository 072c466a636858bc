"""The quiz's grading rule and question picking: per-question rubrics, keyword lists, sentences, grades."""

from __future__ import annotations

import pytest

from lab.catalog import Concept, load_catalog
from lab.quiz import (
    GOOD,
    KEYWORD_LIST,
    NO_ANSWER,
    PARTIAL,
    WEAK,
    grade_answer,
    is_keyword_list,
    pick_question,
)
from lab.quiz_rubrics import RubricError, parse_phrasing, parse_rubrics, rubric_for, stem

RUBRIC_YAML = """
C99:
- question: How do you keep a canary split sticky?
  points:
  - point: Hash a stable user id into a bucket.
    match: [hash* + user id|user key]
  - point: Every replica computes the same answer.
    match: [replica*|worker* + same|agree*]
  - point: No session state is needed.
    match: [no state|stateless|without state]
"""
RUBRIC = parse_rubrics(RUBRIC_YAML)[("C99", 0)]
# The two cases, on the real rubric of "how do you expose a new model to a small share of users first".
TEXTBOOK_CANARY = (
    "A canary release routes a small percentage of production traffic, say 5 %, to the new model while everyone "
    "else stays on the old one. We watch error rates and latency for the canary and compare them with the stable "
    "version. If it looks healthy we gradually increase its share until it takes all the traffic; if not we roll "
    "it back."
)
THIRTY_TERMS = (
    "canary weight percent hash user id bucket blake2b replica worker monotone champion challenger controller "
    "minimum sample inconclusive abort rollback sticky routing step plan guard rails accuracy latency error rate "
    "audit promote alias"
)


def test_a_textbook_canary_answer_is_good_and_thirty_terms_score_nothing() -> None:
    rubric = rubric_for("C21", 0)
    textbook = grade_answer(TEXTBOOK_CANARY, rubric)
    assert textbook.grade == GOOD
    assert len(textbook.met) == len(rubric.points)
    terms = grade_answer(THIRTY_TERMS, rubric)
    assert terms.grade == KEYWORD_LIST
    assert terms.met == []


def test_the_same_answer_is_graded_against_the_question_that_was_asked() -> None:
    # A good answer to "expose to a small share" says little about "why sticky, across replicas".
    assert grade_answer(TEXTBOOK_CANARY, rubric_for("C21", 2)).grade == WEAK


def test_empty_and_whitespace_answers_are_no_answer() -> None:
    for text in ("", "   ", "\n\t\n"):
        result = grade_answer(text, RUBRIC)
        assert result.grade == NO_ANSWER
        assert result.met == []


@pytest.mark.parametrize(
    "answer",
    [
        "hash, user id, bucket, replica, same, stateless",  # comma list
        "hash user id bucket replica same stateless",  # bare terms
        "The hash, the user id, the bucket, the replica, the same, no state.",  # articles sprinkled on a list
        "hash user id\nreplica same\nstateless",  # one term per line
        "hash and user id and bucket and replica and same and stateless and sticky",  # terms glued with "and"
    ],
)
def test_keyword_lists_score_nothing_even_when_every_term_is_there(answer: str) -> None:
    assert is_keyword_list(answer)
    result = grade_answer(answer, RUBRIC)
    assert result.grade == KEYWORD_LIST
    assert result.met == []


@pytest.mark.parametrize(
    "answer",
    [
        "Kubernetes liveness probes restart containers that hang.",  # dense but one punctuated sentence
        "Log params, metrics, the model, the data hash and the git sha",  # an inline list inside a sentence
        "We hash the user id into a bucket so that every replica agrees",  # no full stop but plain prose
    ],
)
def test_sentences_are_not_keyword_lists(answer: str) -> None:
    assert not is_keyword_list(answer)


def test_grades_follow_the_share_of_points_met() -> None:
    three = "We hash the user id into a bucket. Every replica computes the same bucket. So it is stateless."
    two = "We hash the user id into a bucket. Every replica computes the same bucket."
    one = "We hash the user id into a bucket and serve by it."
    none = "We deploy it on Friday and hope for the best."
    grades = [grade_answer(a, RUBRIC) for a in (three, two, one, none)]
    assert [g.grade for g in grades] == [GOOD, GOOD, PARTIAL, WEAK]
    assert [len(g.met) for g in grades] == [3, 2, 1, 0]


def test_a_point_must_be_said_within_one_sentence() -> None:
    point = RUBRIC.points[0]  # hash* + user id
    together = grade_answer("The router will hash the user id.", RUBRIC)
    scattered = grade_answer("The router will hash it. The user id is logged elsewhere.", RUBRIC)
    assert together.points[0].met
    assert not scattered.points[0].met
    assert point.text == "Hash a stable user id into a bucket."


def test_results_name_points_in_words_not_stems() -> None:
    result = grade_answer("We hash the user id into a bucket.", RUBRIC)
    assert [p.text for p in result.missed] == ["Every replica computes the same answer.", "No session state is needed."]
    assert RUBRIC.model_answer.startswith("Hash a stable user id into a bucket. Every replica")


def test_phrasings_stem_words_and_expand_prefixes() -> None:
    assert parse_phrasing("users|stick* + same") == ((("user",), ("stick*",)), (("same",),))
    assert stem("buckets") == stem("bucket") == "bucket"
    assert stem("routing") == stem("route") == "rout"
    assert stem("previous") == "previous"
    sticky = parse_rubrics(RUBRIC_YAML.replace("[no state|stateless|without state]", "[stick*]"))[("C99", 0)]
    assert grade_answer("The stickiness of the split is what matters.", sticky).points[2].met


def test_malformed_rubrics_are_refused_with_the_place_named() -> None:
    one_point = RUBRIC_YAML.split("  - point: Every replica")[0]
    with pytest.raises(RubricError, match=r"C99 question 0: 1 points; a rubric has 2 to 5"):
        parse_rubrics(one_point)
    with pytest.raises(RubricError, match=r"C99 question 0, point 1: .*empty phrase"):
        parse_rubrics(RUBRIC_YAML.replace("[hash* + user id|user key]", "[hash* + |user key]"))
    with pytest.raises(RubricError, match="C77 question 1 has no rubric"):
        rubric_for("C77", 1)


def test_known_limit_a_negated_answer_is_graded_as_if_it_were_right() -> None:
    # docs/quiz.md, "What it cannot judge": words are matched, meaning is not.
    wrong = (
        "A user should not keep the same model; flipping between versions is fine. Do not hash the user id into a "
        "bucket, draw a random number per request. Every replica keeps its own session state, so they do not need "
        "to agree."
    )
    assert grade_answer(wrong, rubric_for("C21", 2)).grade == GOOD


def concept(cid: str, questions: tuple[str, ...]) -> Concept:
    slug, title = f"slug-{cid.lower()}", f"Title {cid}"
    return Concept(cid, slug, title, f"Answer {cid}.", questions, ("p",) * 5, "", (), "mlops-lab demo x", (), ())


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
