"""``lab/ask.py``: free-form questions find the right entry of the index; off-topic ones find nothing.

The queries below are written in other words than the index (no query copies a paraphrase), the way
a learner would type them; each must put the expected question in the top three.
"""

from __future__ import annotations

import pytest

from lab.ask import MIN_SCORE, ask, code_paths, stem, tokens
from lab.questions import load_index

PARAPHRASED = {
    "how do you roll back a model?": "Q-004-10",
    "a release went bad, how do I revert to the old model": "Q-004-10",
    "canary or blue green, what's the difference": "Q-001-11",
    "input feature distributions moved since training, what now": "Q-002-08",
    "why log experiments with mlflow": "Q-000-08",
    "what's a feature store good for": "Q-000-05",
    "should I serve my model on aws lambda": "Q-002-16",
    "what should an mlops engineer be good at": "Q-004-07",
    "GPU, TPU or plain CPU for training?": "Q-000-13",
    "docker containers versus virtual machines": "Q-000-10",
    "scale out or scale up the API": "Q-003-13",
    "how to measure deployment frequency and change failure rate": "Q-004-06",
    "MLOps compared to AIOps": "Q-001-01",
    "dataops vs mlops": "Q-000-07",
    "where to keep secrets in azure": "Q-002-29",
    "audit who called which api in aws": "Q-002-19",
    "azure functions or aks for hosting a model": "Q-002-23",
    "the model is biased against a group, what do we do": "Q-002-09",
    "retrain automatically when accuracy drops": "Q-004-22",
    "bandit versus a/b test": "Q-001-10",
    "plan for recovering from a disaster": "Q-003-15",
    "difference between monitoring and logs": "Q-001-06",
    "benefits of splitting a backend into microservices": "Q-003-04",
    "etl pipelines with azure data factory": "Q-002-25",
    "can I rebuild the exact same model later": "Q-000-14",
    "what tests before shipping a model": "Q-001-07",
}


@pytest.mark.parametrize(("query", "expected"), sorted(PARAPHRASED.items()))
def test_a_paraphrased_question_finds_its_entry_in_the_top_three(query: str, expected: str) -> None:
    found = [m.question.id for m in ask(query, top=3)]
    assert expected in found, (query, found)


def test_the_queries_are_not_copies_of_the_index() -> None:
    asks = {q.ask.lower().rstrip("?.") for q in load_index().questions}
    assert not asks & {q.lower().rstrip("?.") for q in PARAPHRASED}


@pytest.mark.parametrize(
    "query",
    [
        "what is a good lasagna recipe",
        "who won the football world cup",
        "tell me about quantum chromodynamics",
        "",
        "?!",
    ],
)
def test_an_off_topic_question_finds_nothing(query: str) -> None:
    assert ask(query) == []
    assert ask(query, min_score=0.0) == []  # not merely under the floor: no word in common at all


def test_the_right_answers_clear_the_floor_with_a_margin() -> None:
    # The module docstring quotes this margin: the weakest right answer scores at least 1.4 x MIN_SCORE.
    weakest = min(
        next(m.score for m in ask(query, top=3) if m.question.id == expected) for query, expected in PARAPHRASED.items()
    )
    assert weakest >= 1.4 * MIN_SCORE


def test_matches_are_ranked_and_above_the_floor() -> None:
    matches = ask("how do you roll back a model?", top=5)
    scores = [m.score for m in matches]
    assert scores == sorted(scores, reverse=True)
    assert all(s >= MIN_SCORE for s in scores)


def test_a_duplicate_is_found_through_its_original_and_named() -> None:
    best = ask("where do the practices of mlops and devops diverge")[0]
    assert best.question.id == "Q-000-01"
    assert "Q-001-02" in best.paraphrases


def test_code_paths_put_the_question_s_own_pointers_first_without_repeats() -> None:
    best = ask("how do you measure the value of an mlops setup")[0]
    paths = code_paths(best)
    assert paths[0] == best.question.code[0]
    assert len(paths) == len(set(paths))


def test_words_are_stemmed_and_widened_with_synonyms() -> None:
    assert stem("deploying") == stem("deployed") == stem("deploys") == "deploy"
    assert "rollback" in tokens("rolling back")
    assert "rollback" in tokens("revert")
    assert "the" not in tokens("the model")
