"""Notice an alias moved outside mlops-lab, and put the move in the audit trail.

Concept: governance (C16). Our own moves (register, promote, rollback, reject, a canary's promotion)
go through ``pipelines.registry``, which appends an audit entry for each. Anyone with registry access
can also move ``champion`` with a plain MLflow client (``set_registered_model_alias``), and the service
serves the new version within a poll, with no entry saying who or why. The model poller hands every
alias reading to `AliasWatch.observe`; a move it sees is judged one poll later -- our path sets the
alias first and writes its entry a moment after, so an immediate check could mistake our own move for a
stranger's. If then the alias still points where it moved and the trail's latest entry for that alias
does not lead there, the watch records ``alias moved outside mlops-lab`` with the old and new versions.

Guaranteed: a move of ``champion`` or ``challenger`` that stays for two polls is audited once, by the
first worker that judges it (each re-reads the trail before writing, so later workers find the entry).
Not guaranteed: *who* moved it (MLflow keeps no author of an alias), a move undone within a poll, two
workers judging in the same instant (both may write: the trail's writes assume one writer), and
``previous``, which serving does not read. A failed write is reported like any registry error and
retried at the next poll.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

Audited = Callable[[str, "str | None"], bool]  # (alias, version) -> the trail's latest entry for alias leads there
Record = Callable[[str, "str | None", "str | None"], None]  # (alias, from, to): append the entry


@dataclass
class AliasWatch:
    """Remembers the aliases the last poll read and the moves waiting to be judged."""

    audited: Audited
    record: Record
    known: dict[str, str | None] | None = None  # None until the first reading: start-up is not a move
    pending: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)  # alias -> (from, to)

    def observe(self, aliases: Mapping[str, str], watched: Iterable[str]) -> list[tuple[str, str | None, str | None]]:
        """Take one poll's reading of the ``watched`` aliases; returns the outside moves recorded now.

        Raises whatever ``audited`` or ``record`` raise (the registry is down): the move stays pending.
        """
        reading = {alias: aliases.get(alias) for alias in watched}
        if self.known is None:
            self.known = reading
            return []
        judged = {a: move for a, move in self.pending.items() if reading[a] == self.known[a]}  # held for a poll
        for alias, now in reading.items():
            if now != self.known[alias]:  # (re)moved since the last poll: judged at the next one
                start = self.pending[alias][0] if alias in self.pending else self.known[alias]
                self.pending[alias] = (start, now)
        self.known = reading
        recorded = []
        for alias, (before, after) in judged.items():
            if before != after and not self.audited(alias, after):
                self.record(alias, before, after)
                recorded.append((alias, before, after))
            del self.pending[alias]
        return recorded
