"""Self-testing on the concept catalog: ask a question, grade the answer against that question's rubric.

Concept: active recall for the interview (the catalog as an answer key, C01-C53). ``mlops-lab quiz``
asks one catalog question and grades the learner's own answer against the rubric of *that* question
(``lab/quiz_rubrics.yaml``, read by ``lab/quiz_rubrics.py``): the two to five points a good answer
makes, each with phrasings and synonyms. The grader is lexical and transparent, so a learner can
predict it: no model, no embeddings (none ships with our dependencies, and nothing may download).

The rule, in three steps:

1. An empty answer is ``no answer``. An answer that is a list of terms rather than sentences is
   ``keyword list`` and scores nothing. Prose is full of function words (the, is, of, when,
   because, ...): an answer with fewer than ``BARE_TERMS_SHARE`` of them, or fewer than
   ``MIN_FUNCTION_SHARE`` and no sentence end (. ! ?), is terms; so is one glued with "and" or "or"
   (``GLUE_SHARE`` of all words or more, at most two different function words), and one made mostly
   of short comma-separated fragments.
2. The answer is cut into sentences. A rubric point is *met* when one of its phrasings has every
   group (a set of synonyms) in one sentence: a point must be stated, not scattered.
3. The grade is the share of points met: ``good`` from ``GOOD_SHARE``, ``partial`` from
   ``PARTIAL_SHARE``, else ``weak``.

docs/quiz.md reports how often these grades agree with a human's on a committed calibration set
(tests/data/quiz_calibration.yaml) and what the rule cannot judge: a fluent answer that uses the
right words wrongly (a negation, a swapped cause) is graded as if it were right.
Pure functions only (stdlib); the CLI shell is ``cli/quiz.py``.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from lab.catalog import Concept
from lab.quiz_rubrics import WORD_RE, Phrase, Phrasing, Rubric, RubricPoint, stem

NO_ANSWER, KEYWORD_LIST, WEAK, PARTIAL, GOOD = "no answer", "keyword list", "weak", "partial", "good"
GRADES = (NO_ANSWER, KEYWORD_LIST, WEAK, PARTIAL, GOOD)  # worst to best
GOOD_SHARE = 0.66  # of the rubric's points: 2 of 3, 3 of 4, 4 of 5, 2 of 2
PARTIAL_SHARE = 0.3  # 1 of 3, 2 of 5, 1 of 2
BARE_TERMS_SHARE = 0.1  # below this share of function words an answer is terms, punctuated or not
MIN_FUNCTION_SHARE = 0.2  # prose has 30-50 % function words; dense technical sentences 10-20 %
GLUE_SHARE = 0.3  # "and"/"or" this often, with at most two different function words, glue a term list
LIST_FRAGMENT_WORDS = 3  # a comma-separated fragment this short is a term, not a clause
LIST_FRAGMENT_SHARE = 0.7  # five or more fragments, this share of them terms: a list
RULE = (
    "A rubric point is met when one of its phrasings (with synonyms) is said within one sentence; "
    f"good = {GOOD_SHARE:.0%} of the points or more, partial = {PARTIAL_SHARE:.0%} or more, else weak. "
    "A list of terms without sentences scores nothing."
)

# Short words that carry grammar, not content: prose is full of them, keyword lists are not.
_FUNCTION_TEXT = """
    a an the is are was were be been being am it its this that these those to of in on at by for from
    with as and or but if then so because when while which who whom whose what where how why not no
    nor than there their they them we you your our he she his her do does did has have had can could
    should would will shall may might must each every any all some only also into onto over under
    after before between both either such own same too very just more most less until unless whether
    once i me my us one
"""
FUNCTION_WORDS = frozenset(_FUNCTION_TEXT.split())
_SENTENCE_RE = re.compile(r"(?<=[.!?])\s+|\n+")
_FRAGMENT_RE = re.compile(r"[,;\n/|•]+")


@dataclass(frozen=True)
class PointResult:
    """One rubric point and whether the answer met it."""

    text: str
    met: bool


@dataclass(frozen=True)
class Grade:
    """The grade of one answer against one rubric."""

    grade: str
    points: tuple[PointResult, ...]

    @property
    def met(self) -> list[PointResult]:
        return [p for p in self.points if p.met]

    @property
    def missed(self) -> list[PointResult]:
        return [p for p in self.points if not p.met]


def words(text: str) -> list[str]:
    """Lower-case words of a text; ``%`` reads as "percent" and hyphenated words split (blue-green)."""
    return WORD_RE.findall(text.lower().replace("%", " percent "))


def is_keyword_list(answer: str) -> bool:
    """True when an answer is a list of terms rather than sentences (see the module docstring)."""
    tokens = words(answer)
    if not tokens:
        return False
    function_share = sum(t in FUNCTION_WORDS for t in tokens) / len(tokens)
    if function_share < BARE_TERMS_SHARE:
        return True
    if function_share < MIN_FUNCTION_SHARE and not answer.rstrip().endswith((".", "!", "?")):
        return True  # dense and unpunctuated: terms, not a sentence
    glue = Counter(t for t in tokens if t in FUNCTION_WORDS)
    if len(glue) <= 2 and glue["and"] + glue["or"] >= GLUE_SHARE * len(tokens):
        return True  # terms glued with "and" or "or" and little else: prose varies its function words
    fragments = [f for f in _FRAGMENT_RE.split(answer) if words(f)]
    short = sum(len(words(f)) <= LIST_FRAGMENT_WORDS for f in fragments)
    return len(fragments) >= 5 and short / len(fragments) >= LIST_FRAGMENT_SHARE


def sentences(answer: str) -> list[list[str]]:
    """The answer's sentences, each as its list of lower-case words."""
    return [ws for s in _SENTENCE_RE.split(answer) if (ws := words(s))]


def _word_matches(pattern: str, word: str) -> bool:
    return word.startswith(pattern[:-1]) if pattern.endswith("*") else stem(word) == pattern


def _phrase_in(phrase: Phrase, sentence: list[str]) -> bool:
    n = len(phrase)
    return any(
        all(_word_matches(p, w) for p, w in zip(phrase, sentence[i : i + n], strict=True))
        for i in range(len(sentence) - n + 1)
    )


def _phrasing_in(phrasing: Phrasing, sentence: list[str]) -> bool:
    return all(any(_phrase_in(phrase, sentence) for phrase in group) for group in phrasing)


def point_met(point: RubricPoint, answer_sentences: list[list[str]]) -> bool:
    """True when one phrasing of the point has all its groups in one sentence of the answer."""
    return any(_phrasing_in(ph, s) for ph in point.phrasings for s in answer_sentences)


def grade_answer(answer: str, rubric: Rubric) -> Grade:
    """Grade one answer against one question's rubric with the rule in the module docstring."""
    if not answer.strip():
        return Grade(NO_ANSWER, tuple(PointResult(p.text, False) for p in rubric.points))
    if is_keyword_list(answer):
        return Grade(KEYWORD_LIST, tuple(PointResult(p.text, False) for p in rubric.points))
    found = sentences(answer)
    results = tuple(PointResult(p.text, point_met(p, found)) for p in rubric.points)
    share = sum(r.met for r in results) / len(results)
    grade = GOOD if share >= GOOD_SHARE else PARTIAL if share >= PARTIAL_SHARE else WEAK
    return Grade(grade, results)


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
