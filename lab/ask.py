"""``mlops-lab ask``: find the interview questions nearest to a question typed in free words.

Concept: every interview question has a way in. The search is lexical and offline: each distinct
question of the index (lab/questions.yaml) becomes one document made of its paraphrase and its
duplicates' (weighted most), its prose answer, and the titles, one-line answers and questions of the
concepts that answer it. Words are lower-cased, reduced by a small suffix stripper ("rolling back" and
"rollbacks" both become ``rollback``) and widened by a short synonym list ("revert" also means
``rollback``), then scored with TF-IDF and cosine similarity, computed here in a few lines (the
corpus is 92 short documents, so importing scikit-learn would cost more than the search). A query
that shares no meaningful word with any document, or scores under ``MIN_SCORE``, finds nothing:
saying "no match" beats printing a random answer. What lexical search cannot do: a query that shares
one topical word with an entry can still match it, and one in wholly other words can miss it (the
synonym list is short). On the paraphrased queries of tests/unit/lab/test_ask.py every right answer
is in the top three and scores at least 1.4 x MIN_SCORE (0.17); off-topic ones share no word and score 0.
Nothing is downloaded and no model is loaded, so an answer takes well under a second.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from lab.catalog import Concept, load_catalog
from lab.questions import Question, QuestionIndex, demo_of, distinct_questions, load_index

MIN_SCORE = 0.12  # cosine similarity under which a match is noise (tests/unit/lab/test_ask.py measures both sides)
TOP = 3

# Phrases first (they span words), then single-word synonyms: each adds canonical tokens, never removes any.
_PHRASES = (
    (re.compile(r"\broll(?:ing|ed|s)?[\s-]+back\b"), " rollback "),
    (re.compile(r"\bscal(?:e|ing)[\s-]+(?:up|vertically)\b"), " vertical scale "),
    (re.compile(r"\bscal(?:e|ing)[\s-]+(?:out|horizontally)\b"), " horizontal scale "),
    (re.compile(r"\ba\s*/\s*b\b"), " abtest "),
    (re.compile(r"\bci\s*/\s*cd\b"), " cicd "),
    (re.compile(r"\bblue[\s/-]+green\b"), " bluegreen "),
    (re.compile(r"\bfeature[\s-]+(?:flag|toggle)s?\b"), " toggle "),
    (re.compile(r"\bmulti[\s-]+armed\b"), " bandit "),
    (re.compile(r"\binfrastructure[\s-]+as[\s-]+code\b"), " iac "),
)
_SYNONYMS_RAW: dict[str, tuple[str, ...]] = {  # plain words; stemmed below, so keys match stemmed tokens
    "revert": ("rollback",),
    "rebuild": ("reproduce",),
    "recreate": ("reproduce",),
    "undo": ("rollback",),
    "restore": ("rollback",),
    "downgrade": ("rollback",),
    "shift": ("drift",),
    "degrade": ("decay",),
    "stale": ("decay", "drift"),
    "k8s": ("kubernetes",),
    "docker": ("container",),
    "ci": ("cicd",),
    "cd": ("cicd",),
    "progressive": ("canary",),
    "gradual": ("canary",),
    "fairness": ("bias",),
    "bias": ("fairness",),
    "secret": ("credential",),
    "password": ("secret", "credential"),
    "credential": ("secret",),
    "amazon": ("aws",),
    "gcp": ("google", "vertex"),
    "microsoft": ("azure",),
    "observability": ("monitoring",),
    "watch": ("monitoring",),
    "alarm": ("alert",),
    "outlier": ("anomaly",),
    "iac": ("terraform",),
    "terraform": ("iac",),
    "gpu": ("compute", "hardware"),
    "tpu": ("compute", "hardware"),
    "serverless": ("lambda", "function"),
}
_SUFFIXES = (
    "ational",
    "ization",
    "ibility",
    "ability",
    "ation",
    "ible",
    "able",
    "ness",
    "ment",
    "ing",
    "ies",
    "ity",
    "ed",
    "es",
    "s",
    "e",
    "y",
)
_TOKEN_RE = re.compile(r"[a-z0-9]+")
# Words that say nothing about the topic (generic adjectives too: "a good lasagna" is not about tests).
_STOP_WORDS = """
    a an and are as at be but by can could do does for from how i if in into is it its me my no not of
    on or our should so than that the their them then there these they this to us was we what when where
    which who why will with would you your about any between each get give go have has more one other
    some such tell explain describe mean means use used using work way ways doe vs versus good best
    better bad great
"""
_STOP = frozenset(_STOP_WORDS.split())


def stem(word: str) -> str:
    """A crude suffix stripper: good enough to make "deploying", "deployed" and "deploys" one token."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    if len(word) > 4 and word[-1] == word[-2] and word[-1] not in "ls":
        word = word[:-1]  # "running" -> "runn" -> "run"
    return word


_SYNONYMS = {stem(k): tuple(stem(v) for v in vs) for k, vs in _SYNONYMS_RAW.items()}


def tokens(text: str) -> list[str]:
    """Lower-cased, stemmed, stop-word-free tokens of ``text``, with synonyms appended."""
    lowered = text.lower()
    for pattern, replacement in _PHRASES:
        lowered = pattern.sub(replacement, lowered)
    out: list[str] = []
    for raw in _TOKEN_RE.findall(lowered):
        if raw in _STOP:
            continue
        word = stem(raw)
        out.append(word)
        out += _SYNONYMS.get(word, ())
    return out


@dataclass(frozen=True)
class Match:
    """One question found: how well it matched, the distinct question and the concepts behind it."""

    score: float
    question: Question
    concepts: tuple[Concept, ...]
    demo: str | None
    paraphrases: tuple[str, ...]


def _document(q: Question, index: QuestionIndex, concepts: dict[str, Concept]) -> str:
    asks = [q.ask] + [d.ask for d in index.duplicates(q)]
    parts = asks * 3 + [q.topic]  # the question's own words weigh most
    if q.answer:
        parts.append(q.answer)
    for cid in q.concepts:
        c = concepts[cid]
        parts += [c.title, c.title, c.answer.split(";", 1)[0], *c.questions]
    return "\n".join(parts)


Vector = dict[str, float]


def _weights(counts: Counter[str], idf: dict[str, float]) -> Vector:
    """Sublinear TF-IDF weights, L2-normalised (the formula of scikit-learn's ``TfidfVectorizer``)."""
    raw = {t: (1.0 + math.log(n)) * idf[t] for t, n in counts.items() if t in idf}
    norm = math.sqrt(sum(w * w for w in raw.values())) or 1.0
    return {t: w / norm for t, w in raw.items()}


@dataclass(frozen=True)
class _Engine:
    questions: tuple[Question, ...]
    idf: dict[str, float]
    vectors: tuple[Vector, ...]


@lru_cache(maxsize=1)
def _engine() -> _Engine:
    index, concepts = load_index(), {c.id: c for c in load_catalog()}
    questions = tuple(distinct_questions(index))
    counts = [Counter(tokens(_document(q, index, concepts))) for q in questions]
    df = Counter(t for c in counts for t in c)
    n = len(counts)
    idf = {t: math.log((1 + n) / (1 + k)) + 1.0 for t, k in df.items()}  # smoothed, as scikit-learn does
    return _Engine(questions, idf, tuple(_weights(c, idf) for c in counts))


def ask(text: str, top: int = TOP, min_score: float = MIN_SCORE) -> list[Match]:
    """The best-matching distinct questions for ``text``, best first; empty when nothing is relevant."""
    engine = _engine()
    query = _weights(Counter(tokens(text)), engine.idf)
    if not query:  # no word of the query occurs anywhere in the index
        return []
    scores = [sum(w * doc.get(t, 0.0) for t, w in query.items()) for doc in engine.vectors]
    index, concepts = load_index(), {c.id: c for c in load_catalog()}
    ranked = sorted(range(len(scores)), key=lambda i: -scores[i])[:top]
    out = []
    for i in ranked:
        if scores[i] < min_score:
            break
        q = engine.questions[i]
        out.append(
            Match(
                score=scores[i],
                question=q,
                concepts=tuple(concepts[c] for c in q.concepts),
                demo=demo_of(q, concepts),
                paraphrases=tuple(d.id for d in index.duplicates(q)),
            )
        )
    return out


def code_paths(match: Match) -> list[str]:
    """The code a match points at: the question's own pointers, then its concepts' code, without repeats."""
    refs: Sequence[str] = [*match.question.code, *(ref for c in match.concepts for ref in c.code)]
    return list(dict.fromkeys(refs))
