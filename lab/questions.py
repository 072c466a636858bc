"""The interview question index: every question of the list, mapped to the concepts and demo that answer it.

Concept: every interview question has a way in. ``lab/questions.yaml`` is the project's own copy of the
question list, in our words and grouped by topic. A near-duplicate points at its original with
``same_as`` and borrows its answer; every distinct question names the catalog concepts that answer it,
or a short prose answer where no concept does, plus the demo that shows it and pointers into the code.
``check_index`` holds the file to its own declared structure (every id of every seed exactly once, the
totals it states) and to the rest of the repository (every concept, demo and code path exists).
Only stdlib and PyYAML are imported, like the catalog, so loading it is instant.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import yaml

from lab.catalog import Concept
from lab.refs import code_ref_problem

_ID_RE = re.compile(r"Q-(?P<seed>\d{3})-(?P<n>\d{2})")
_FIELDS = {"id", "ask", "same_as", "concepts", "demo", "answer", "code"}


class QuestionIndexError(ValueError):
    """The question index is malformed; the message names the question and the field."""


@dataclass(frozen=True)
class Question:
    """One question of the list: its id, topic, our paraphrase, and its way in (or the id it duplicates)."""

    id: str
    topic: str
    ask: str
    same_as: str | None = None
    concepts: tuple[str, ...] = ()
    demo: str | None = None
    answer: str | None = None
    code: tuple[str, ...] = ()


@dataclass(frozen=True)
class QuestionIndex:
    """The whole index with the totals the file declares about itself."""

    questions: tuple[Question, ...]
    seeds: dict[str, int]
    total: int
    distinct: int

    def by_id(self) -> dict[str, Question]:
        return {q.id: q for q in self.questions}

    def original(self, q: Question) -> Question:
        """The distinct question ``q`` duplicates (``q`` itself when it is distinct)."""
        return self.by_id()[q.same_as] if q.same_as else q

    def duplicates(self, q: Question) -> list[Question]:
        """The questions marked ``same_as`` ``q``."""
        return [d for d in self.questions if d.same_as == q.id]

    def topics(self) -> list[str]:
        """Topics in file order."""
        return list(dict.fromkeys(q.topic for q in self.questions))


def _question(raw: object, topic: str, source: str) -> Question:
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
        raise QuestionIndexError(f"{source}: topic {topic!r} has an entry without an `id`")
    where = f"{source}: {raw['id']}"
    if unknown := sorted(set(raw) - _FIELDS):
        raise QuestionIndexError(f"{where}: unknown fields {unknown}; allowed: {sorted(_FIELDS)}")
    if not isinstance(raw.get("ask"), str) or not raw["ask"].strip():
        raise QuestionIndexError(f"{where}: `ask` (our paraphrase of the question) must be a non-empty string")
    for field in ("concepts", "code"):
        if not isinstance(raw.get(field, []), list):
            raise QuestionIndexError(f"{where}: `{field}` must be a list")
    answer = raw.get("answer")
    return Question(
        id=raw["id"],
        topic=topic,
        ask=raw["ask"].strip(),
        same_as=raw.get("same_as"),
        concepts=tuple(raw.get("concepts", [])),
        demo=raw.get("demo"),
        answer=" ".join(answer.split()) if isinstance(answer, str) else None,
        code=tuple(raw.get("code", [])),
    )


def parse_index(text: str, source: str = "questions.yaml") -> QuestionIndex:
    """Parse the index YAML (shape only; ``check_index`` checks its content)."""
    data = yaml.safe_load(text)
    if not isinstance(data, dict) or not {"seeds", "total", "distinct", "topics"} <= set(data):
        raise QuestionIndexError(f"{source}: expected a mapping with seeds, total, distinct and topics")
    questions = []
    for group in data["topics"]:
        topic = group.get("topic") if isinstance(group, dict) else None
        if not isinstance(topic, str):
            raise QuestionIndexError(f"{source}: every topic needs `topic: NAME` and `questions:`")
        questions += [_question(raw, topic, source) for raw in group.get("questions") or []]
    seeds = {str(k): int(v) for k, v in data["seeds"].items()}
    return QuestionIndex(tuple(questions), seeds, int(data["total"]), int(data["distinct"]))


@lru_cache(maxsize=1)
def _packaged() -> QuestionIndex:
    text = resources.files("lab").joinpath("questions.yaml").read_text(encoding="utf-8")
    return parse_index(text, "lab/questions.yaml")


def load_index(path: str | Path | None = None) -> QuestionIndex:
    """The index shipped in the package, or the one at ``path``."""
    if path is None:
        return _packaged()
    p = Path(path)
    return parse_index(p.read_text(encoding="utf-8"), str(p))


def expected_ids(seeds: dict[str, int]) -> list[str]:
    """Every id the seeds declare: ``Q-000-01`` .. ``Q-000-15`` for a seed ``000`` of 15 questions, and so on."""
    return [f"Q-{seed}-{n:02d}" for seed, count in sorted(seeds.items()) for n in range(1, count + 1)]


def demo_of(q: Question, concepts: dict[str, Concept]) -> str | None:
    """The demo that shows a distinct question: its own, else its first concept's."""
    if q.demo:
        return q.demo
    first = next((concepts[c] for c in q.concepts if c in concepts), None)
    return first.demo_name if first else None


def check_index(index: QuestionIndex, concepts: Sequence[Concept], demos: Sequence[str], root: Path) -> list[str]:
    """Every problem: a missing, duplicated or malformed id, totals that disagree with the file's own
    declaration, a `same_as` that points nowhere or forward, an unknown concept or demo, a missing
    code path, or a distinct question with neither concepts nor a prose answer."""
    problems: list[str] = []
    by_concept = {c.id: c for c in concepts}
    ids = [q.id for q in index.questions]
    wanted = expected_ids(index.seeds)
    problems += [f"{i}: listed {ids.count(i)} times" for i in sorted(set(ids)) if ids.count(i) > 1]
    problems += [f"{i}: missing from the index" for i in wanted if i not in ids]
    problems += [f"{i}: not an id the seeds declare" for i in sorted(set(ids) - set(wanted))]
    if len(wanted) != index.total:
        problems.append(f"the seeds declare {len(wanted)} questions but `total` says {index.total}")
    distinct = [q for q in index.questions if q.same_as is None]
    if len(distinct) != index.distinct:
        problems.append(f"{len(distinct)} distinct questions but `distinct` says {index.distinct}")
    seen: dict[str, Question] = {}
    for q in index.questions:
        if q.same_as is not None:
            target = seen.get(q.same_as)
            if target is None or target.same_as is not None or target.topic != q.topic:
                problems.append(f"{q.id}: same_as {q.same_as} is not a distinct question listed above it in its topic")
            if q.concepts or q.answer or q.demo or q.code:
                problems.append(f"{q.id}: a duplicate borrows its original's answer; give it only `ask` and `same_as`")
        else:
            if not q.concepts and not q.answer:
                problems.append(f"{q.id}: no concept answers it and it has no prose `answer`")
            problems += [f"{q.id}: no concept {c} in the catalog" for c in q.concepts if c not in by_concept]
            demo = demo_of(q, by_concept)
            if demo is not None and demo not in demos:
                problems.append(f"{q.id}: no demo {demo!r}")
            problems += [f"{q.id}: {p}" for ref in q.code if (p := code_ref_problem(ref, root))]
        seen[q.id] = q
    return problems


def distinct_questions(index: QuestionIndex | None = None) -> list[Question]:
    """The questions that carry their own answer, in file order."""
    items = index or load_index()
    return [q for q in items.questions if q.same_as is None]
