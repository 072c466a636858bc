"""Self-testing on the concept catalog: ask a question, score the answer against the key points.

Concept: active recall for the interview (the catalog as an answer key, C01-C53). ``mlops-lab quiz``
asks one catalog question and says which key points of a strong answer the learner's own answer
touched. The scoring is deliberately transparent, so a learner can predict it and cannot be
misled by it: no model, no embeddings, only a keyword rule that fits in one sentence.

The rule: each key point's *terms* are its distinctive words (at least 5 letters, not a stop word)
reduced to a stem by stripping one common English suffix (``-ing``, ``-ed``, ``-s``, ...), plus every
code identifier written in backticks, taken whole. A word term is found when its stem is the stem
of some word of the answer; an identifier is found when it appears verbatim (case-insensitive) in
the answer. A key point is *covered* when at least ``threshold`` (default 30 %) of its terms are
found. It is a recall aid, not a grade: a good answer in unusual words can score low, and a list of
keywords scores high.

Pure functions only (stdlib); the CLI shell is ``cli/quiz.py``.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from lab.catalog import Concept

DEFAULT_THRESHOLD = 0.3
MIN_WORD_LENGTH = 5
RULE = (
    "A key point's terms are its words of 5+ letters (stop words removed, suffixes such as -ing/-ed/-s "
    "stripped) plus its `code identifiers`; it counts as covered when at least {pct:.0f}% of its terms "
    "appear in your answer."
)

# Common long function words that say nothing about the concept (shorter words never count anyway).
_STOP_TEXT = """
    about above after again against along already although always among another because before being
    below between cannot could doing during either every first given having itself least makes might
    never other others otherwise shall should since still takes their theirs there these thing
    things those though three through under until using where whether which while whole whose within
    without would yours
"""
STOP_WORDS = frozenset(_STOP_TEXT.split())

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
_WORD_RE = re.compile(r"[a-z][a-z0-9]*")
_IDENT_RE = re.compile(r"`([^`]+)`")


def stem(word: str) -> str:
    """Strip one common suffix from a lower-case word: ``rollouts``→``rollout``, ``routing``→``rout``."""
    for suffix, replacement in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: len(word) - len(suffix)] + replacement
    return word


def key_terms(point: str) -> tuple[str, ...]:
    """The distinctive terms of a key point, in order of appearance, without repeats.

    Word terms are stems (see ``stem``); identifiers (text in backticks) are kept whole and
    lower-cased, e.g. ``x-user-id``.
    """
    terms: list[str] = [ident.strip().lower() for ident in _IDENT_RE.findall(point) if ident.strip()]
    for word in _WORD_RE.findall(point.lower()):
        if len(word) >= MIN_WORD_LENGTH and word not in STOP_WORDS:
            terms.append(stem(word))
    return tuple(dict.fromkeys(terms))


@dataclass(frozen=True)
class PointScore:
    """How one key point fared: its terms, which of them the answer used, and the verdict."""

    point: str
    terms: tuple[str, ...]
    found: tuple[str, ...]
    covered: bool

    @property
    def share(self) -> float:
        """Found terms over all terms (0 for a point without terms)."""
        return len(self.found) / len(self.terms) if self.terms else 0.0


@dataclass(frozen=True)
class QuizScore:
    """Every key point's score for one answer."""

    points: tuple[PointScore, ...]
    threshold: float

    @property
    def covered(self) -> list[PointScore]:
        return [p for p in self.points if p.covered]

    @property
    def missed(self) -> list[PointScore]:
        return [p for p in self.points if not p.covered]


def score_answer(answer: str, key_points: Sequence[str], threshold: float = DEFAULT_THRESHOLD) -> QuizScore:
    """Score an answer against key points with the rule in the module docstring.

    Raises:
        ValueError: ``threshold`` is not in (0, 1].
    """
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}; 0.3 means 30 % of a point's terms")
    text = answer.lower()
    stems = {stem(w) for w in _WORD_RE.findall(text)}
    scores = []
    for point in key_points:
        terms = key_terms(point)
        found = tuple(t for t in terms if (t in text if _is_identifier(t, point) else t in stems))
        covered = bool(terms) and len(found) / len(terms) >= threshold
        scores.append(PointScore(point=point, terms=terms, found=found, covered=covered))
    return QuizScore(points=tuple(scores), threshold=threshold)


def _is_identifier(term: str, point: str) -> bool:
    return any(term == ident.strip().lower() for ident in _IDENT_RE.findall(point))


@dataclass(frozen=True)
class Question:
    """One question of one concept."""

    concept: Concept
    index: int
    text: str


def pick_question(concepts: Sequence[Concept], seed: int | None = None) -> Question:
    """A random question from the given concepts; the same seed always picks the same question.

    Pass one concept to ask about it, or the whole catalog for any question. ``seed=None`` draws
    a fresh question each time.

    Raises:
        ValueError: the concepts hold no question.
    """
    pool = [(c, i) for c in concepts for i in range(len(c.questions))]
    if not pool:
        raise ValueError("no question to ask: the chosen concepts list no `questions` in lab/catalog.yaml")
    concept, index = random.Random(seed).choice(pool)  # noqa: S311 - picks a quiz question, not a secret
    return Question(concept=concept, index=index, text=concept.questions[index])
