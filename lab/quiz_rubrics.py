"""The quiz's answer key: one rubric per catalog question, read from ``lab/quiz_rubrics.yaml``.

Concept: grading against the question that was asked. A concept's key points describe the whole
concept; a good answer to one of its three questions makes only some of them, in its own words. So
each question has its own rubric: two to five points that a good answer to *that* question makes,
each point written as a sentence (shown to the learner, met or missed) and given one or more
phrasings to recognise it by. The rubric is data, reviewed like the catalog, and
tests/unit/lab/test_quiz_rubrics.py holds it complete: every question of every concept has one, and
its stored question text is the catalog's.

A phrasing is written ``group + group + ...``; a group is ``phrase|phrase|...`` (synonyms); a phrase
is one or more words that must appear next to each other. Words are compared after ``stem`` (so
``users`` finds ``user``); a word ending in ``*`` matches any word that starts with it (``stick*``
finds sticky and stickiness). A phrasing is found when every one of its groups occurs in the same
sentence of the answer (see ``lab/quiz.py``). Only stdlib and PyYAML are imported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import yaml

POINTS = (2, 5)  # fewest and most points per rubric
RUBRICS_FILE = "quiz_rubrics.yaml"

Phrase = tuple[str, ...]  # pattern words: a stem, or a prefix ending in "*"
Group = tuple[Phrase, ...]  # synonyms: any one phrase will do
Phrasing = tuple[Group, ...]  # every group must occur in one sentence

# Tried in order, first match wins; a stem keeps at least 4 letters. The no-op rules keep the final
# "s" of process, previous and analysis.
_SUFFIXES = (
    ("ss", "ss"),
    ("us", "us"),
    ("is", "is"),
    ("ational", "ate"),
    ("ations", "ate"),
    ("ation", "ate"),
    ("ments", ""),
    ("ment", ""),
    ("ness", ""),
    ("ings", ""),
    ("ing", ""),
    ("ies", "y"),
    ("ied", "y"),
    ("ers", ""),
    ("er", ""),
    ("es", ""),
    ("ed", ""),
    ("ly", ""),
    ("s", ""),
    ("e", ""),
)
WORD_RE = re.compile(r"[a-z0-9]+")


class RubricError(ValueError):
    """The rubric file is malformed; the message names the concept, the question and the field."""


@lru_cache(maxsize=8192)  # the grader stems the same few thousand words over and over
def stem(word: str) -> str:
    """Strip one common suffix from a lower-case word: ``rollouts``→``rollout``, ``routing``→``rout``."""
    for suffix, replacement in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: len(word) - len(suffix)] + replacement
    return word


@dataclass(frozen=True)
class RubricPoint:
    """One point a good answer makes: its sentence and the phrasings that recognise it."""

    text: str
    phrasings: tuple[Phrasing, ...]


@dataclass(frozen=True)
class Rubric:
    """The points a good answer to one question makes."""

    concept_id: str
    index: int
    question: str
    points: tuple[RubricPoint, ...]

    @property
    def model_answer(self) -> str:
        """The points' sentences in order: a short answer that meets every point."""
        return " ".join(p.text for p in self.points)


def parse_phrasing(text: str) -> Phrasing:
    """``"small|few + user*|traffic"`` → ``((("small",), ("few",)), (("user*",), ("traffic",)))``.

    Raises:
        RubricError: a group or phrase is empty.
    """
    groups: list[Group] = []
    for raw_group in text.split("+"):
        phrases: list[Phrase] = []
        for raw_phrase in raw_group.split("|"):
            words = tuple(_pattern(w) for w in re.findall(r"[a-z0-9]+\*?", raw_phrase.lower()))
            if not words:
                raise RubricError(f"phrasing {text!r} has an empty phrase; write `a|b + c`, no empty parts")
            phrases.append(words)
        groups.append(tuple(phrases))
    return tuple(groups)


def _pattern(word: str) -> str:
    return word if word.endswith("*") else stem(word)


def _rubric(concept_id: str, index: int, raw: object, source: str) -> Rubric:
    where = f"{source}: {concept_id} question {index}"
    if not isinstance(raw, dict) or set(raw) != {"question", "points"}:
        raise RubricError(f"{where}: write a mapping with exactly `question` and `points`")
    question, raw_points = raw["question"], raw["points"]
    if not isinstance(question, str) or not isinstance(raw_points, list):
        raise RubricError(f"{where}: `question` is the catalog's text, `points` a list")
    fewest, most = POINTS
    if not fewest <= len(raw_points) <= most:
        raise RubricError(f"{where}: {len(raw_points)} points; a rubric has {fewest} to {most}")
    points = []
    for number, p in enumerate(raw_points, start=1):
        if not isinstance(p, dict) or set(p) != {"point", "match"}:
            raise RubricError(f"{where}, point {number}: write `point: <sentence>` and `match: [phrasings]`")
        if not isinstance(p["point"], str) or not p["point"].strip():
            raise RubricError(f"{where}, point {number}: `point` must be a sentence")
        if not isinstance(p["match"], list) or not p["match"] or not all(isinstance(m, str) for m in p["match"]):
            raise RubricError(f"{where}, point {number}: `match` must be a non-empty list of phrasings")
        try:
            phrasings = tuple(parse_phrasing(m) for m in p["match"])
        except RubricError as err:
            raise RubricError(f"{where}, point {number}: {err}") from None
        points.append(RubricPoint(text=" ".join(p["point"].split()), phrasings=phrasings))
    return Rubric(concept_id=concept_id, index=index, question=question.strip(), points=tuple(points))


def parse_rubrics(text: str, source: str = RUBRICS_FILE) -> dict[tuple[str, int], Rubric]:
    """Parse rubric YAML (``C21: [ {question, points}, ... ]``) into rubrics keyed by (concept id, index)."""
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise RubricError(f"{source}: the file must map concept ids to lists of question rubrics")
    rubrics: dict[tuple[str, int], Rubric] = {}
    for concept_id, entries in data.items():
        if not isinstance(entries, list):
            raise RubricError(f"{source}: {concept_id} must hold a list, one rubric per question in catalog order")
        for index, raw in enumerate(entries):
            rubrics[(str(concept_id), index)] = _rubric(str(concept_id), index, raw, source)
    return rubrics


@lru_cache(maxsize=1)
def load_rubrics() -> dict[tuple[str, int], Rubric]:
    """The rubrics shipped in the ``lab`` package."""
    text = resources.files("lab").joinpath(RUBRICS_FILE).read_text(encoding="utf-8")
    return parse_rubrics(text, f"lab/{RUBRICS_FILE}")


def rubric_for(concept_id: str, index: int) -> Rubric:
    """The rubric of one catalog question.

    Raises:
        RubricError: the question has no rubric (a question was added without one).
    """
    try:
        return load_rubrics()[(concept_id, index)]
    except KeyError:
        raise RubricError(
            f"{concept_id} question {index} has no rubric; add one to lab/{RUBRICS_FILE} (see its header)"
        ) from None
