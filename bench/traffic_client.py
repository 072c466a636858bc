"""Send labelled traffic to a running service: the users and the labelling process of the labs.

Concepts: REST serving (C18) and the feedback loop (C38). The workshop labs need production traffic
without asking learners to write a client: rows of a known kind (clean, or one of the three shifts)
whose true class is known, sent one request per row to ``POST /v1/predict`` of a *running* service
with an ``X-User-Id`` from a pool of users (canary and A/B routing are sticky per user), and, like a
labelling process that runs later, the true label of every answer to ``POST /v1/feedback``, with the
answer's own feedback token (``X-Feedback-Token``): the caller that got an answer may label it. A forced
arm (``X-Force-Arm``) is for operators and is sent with the admin token.

Feedback goes out after every ``feedback_every`` predictions rather than all at the end, so a bandit
learns while the traffic is still flowing (each round's labels are the rewards of that round), and
a canary's controller sees labels for whatever was sent before it was stopped. The run is bounded
by its row count and by a time cap. HTTP is the standard library's ``http.client`` on one
keep-alive connection; `send_traffic` takes any `Transport`, so tests can also drive the app in
process. What comes back is a `TrafficReport`: per arm, the requests, the model versions that
answered, and how many answers were right.
"""

from __future__ import annotations

import http.client
import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from pipelines.batches import generate_batch

if TYPE_CHECKING:
    import pandas as pd

    from core.params import Params

MAX_FAILURE_NOTES = 5
MAX_CONSECUTIVE_CONNECTION_ERRORS = 5  # the service went away: stop instead of failing every remaining row
MAX_RATE_LIMIT_RETRIES = 10  # 429 answers in a row for one request before it counts as failed


class ServiceUnreachableError(ConnectionError):
    """The service does not answer at its URL (or is not ready); the message says how to start it."""


@dataclass(frozen=True)
class Reply:
    """An HTTP answer: status, JSON body, and the seconds a 429 asks the client to wait (``Retry-After``)."""

    status: int
    body: dict[str, Any]
    retry_after: float | None = None


class Transport(Protocol):
    """Sends one JSON request and returns its `Reply`; raises OSError when the service is gone."""

    def request(self, method: str, path: str, body: dict[str, Any] | None, headers: dict[str, str]) -> Reply: ...


class HttpTransport:
    """One keep-alive ``http.client`` connection to ``base_url``; reconnects after a broken connection."""

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"--url must look like http://127.0.0.1:8000, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self._prefix = parts.path.rstrip("/")
        self._connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        self._host, self._port, self._timeout = parts.hostname, parts.port, timeout
        self._conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: dict[str, Any] | None, headers: dict[str, str]) -> Reply:
        if self._conn is None:
            self._conn = self._connection_class(self._host, self._port, timeout=self._timeout)
        payload = None if body is None else json.dumps(body).encode()
        try:
            self._conn.request(method, self._prefix + path, payload, {"Content-Type": "application/json", **headers})
            response = self._conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException):
            self.close()  # the next request opens a fresh connection
            raise
        try:
            answer = json.loads(raw) if raw else {}
        except ValueError:
            answer = {"error": raw[:200].decode(errors="replace")}
        retry_after = response.getheader("Retry-After")
        return Reply(
            response.status,
            answer if isinstance(answer, dict) else {"answer": answer},
            float(retry_after) if retry_after and retry_after.isdigit() else None,
        )

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


@dataclass(frozen=True)
class LabelledRow:
    """One request's body (features, and the row's group when the data has one) and, when known, its true class."""

    features: dict[str, float | str]
    label: str | None


@dataclass
class ArmStats:
    """What one arm answered: requests, the versions and strategies behind them, right answers."""

    requests: int = 0
    labelled: int = 0  # answers whose true label is known
    correct: int = 0
    versions: Counter[str] = field(default_factory=Counter)
    strategies: Counter[str] = field(default_factory=Counter)

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.labelled if self.labelled else None


@dataclass
class TrafficReport:
    """The outcome of one traffic run."""

    arms: dict[str, ArmStats] = field(default_factory=dict)
    failed: int = 0  # predictions or feedback that did not get a 2xx answer
    failures: list[str] = field(default_factory=list)  # the first few failure messages
    feedback: Counter[str] = field(default_factory=Counter)  # feedback status -> count
    not_sent: int = 0  # rows left when the time cap or a lost connection stopped the run
    stopped: str = ""  # why the run stopped early, if it did
    elapsed_s: float = 0.0

    @property
    def total(self) -> int:
        return sum(a.requests for a in self.arms.values())

    def share(self, arm: str) -> float:
        return self.arms[arm].requests / self.total if self.total and arm in self.arms else 0.0

    def note_failure(self, message: str) -> None:
        self.failed += 1
        if len(self.failures) < MAX_FAILURE_NOTES:
            self.failures.append(message)

    def rows(self) -> list[list[str]]:
        """Table rows: arm, requests, share, model version(s), strategy, right answers, accuracy."""
        table = []
        for name in sorted(self.arms):
            a = self.arms[name]
            table.append(
                [
                    name,
                    str(a.requests),
                    f"{self.share(name):.1%}",
                    ", ".join(f"v{v}" for v in sorted(a.versions)),
                    ", ".join(sorted(a.strategies)),
                    f"{a.correct}/{a.labelled}" if a.labelled else "-",
                    "-" if a.accuracy is None else f"{a.accuracy:.1%}",
                ]
            )
        return table


REPORT_COLUMNS = ["arm", "requests", "share", "model version", "strategy", "right", "accuracy"]


def batch_rows(kind: str, reference: pd.DataFrame, params: Params, rows: int, seed: int) -> list[LabelledRow]:
    """``rows`` rows of a batch kind (clean, covariate-shift, prior-shift, concept-shift) with their true class."""
    return frame_rows(generate_batch(kind, reference, params, rows=rows, seed=seed), params)


def frame_rows(frame: pd.DataFrame, params: Params) -> list[LabelledRow]:
    """Rows of a frame holding the feature columns and, optionally, the target and ``dataset.group_column``.

    A row's group (a site) goes into its body, so the service logs it for the production fairness check (C58).
    """
    features, target, group = params.dataset.feature_names, params.dataset.target, params.dataset.group_column
    missing = [f for f in features if f not in frame.columns]
    if missing:
        raise ValueError(f"the data has no column(s) {missing}; it needs {features} (and {target!r} for feedback)")
    labels = frame[target].astype(str).tolist() if target in frame.columns else [None] * len(frame)
    groups = frame[group].tolist() if group is not None and group in frame.columns else [None] * len(frame)
    records = frame[features].astype(float).to_dict("records")
    named = [{group: str(g)} if group and g is not None and g == g else {} for g in groups]  # NaN != NaN: no group
    return [
        LabelledRow({k: float(v) for k, v in r.items()} | extra, y)
        for r, y, extra in zip(records, labels, named, strict=True)
    ]


def user_pool(count: int, prefix: str = "user") -> list[str]:
    """Stable user ids ``user-0000`` ...: the same users come back in every run."""
    if count < 1:
        raise ValueError(f"the user pool needs at least one user, got {count}")
    return [f"{prefix}-{i:04d}" for i in range(count)]


def check_ready(transport: Transport, url: str, port_hint: int | None = None) -> dict[str, Any]:
    """``GET /readyz``: the loaded models, or `ServiceUnreachableError` saying what to start or train."""
    start = f"`mlops-lab serve --port {port_hint}`" if port_hint else "`mlops-lab serve --port PORT`"
    try:
        reply = transport.request("GET", "/readyz", None, {})
    except (OSError, http.client.HTTPException) as err:
        raise ServiceUnreachableError(
            f"no service answers at {url} ({err}); start it with {start} in another terminal, "
            "or point --url (or MLOPS_API_URL) at it"
        ) from err
    if reply.status == 404:
        raise ServiceUnreachableError(f"{url} answers but is not the mlops-lab service (no /readyz); check --url")
    if reply.status != 200:
        raise ServiceUnreachableError(
            f"the service at {url} is not ready ({reply.status}): it has no champion loaded; train one "
            "(`mlops-lab ingest && mlops-lab train`) and it loads it within a few seconds"
        )
    return reply.body


@dataclass
class _Session:
    """The run's transport and clock: one request at a time, waiting politely when rate-limited."""

    transport: Transport
    deadline: float
    clock: Callable[[], float]
    sleep: Callable[[float], None]

    def call(self, method: str, path: str, body: dict[str, Any], headers: dict[str, str]) -> Reply:
        """Send; on 429 wait ``Retry-After`` (at most until the deadline) and send again."""
        reply = self.transport.request(method, path, body, headers)
        for _ in range(MAX_RATE_LIMIT_RETRIES):
            if reply.status != 429:
                break
            wait = reply.retry_after or 1.0
            if self.clock() + wait > self.deadline:
                break
            self.sleep(wait)  # the service's rate limit asked for it (Retry-After); not synchronisation
            reply = self.transport.request(method, path, body, headers)
        return reply


def send_traffic(
    transport: Transport,
    rows: Sequence[LabelledRow],
    users: Sequence[str],
    *,
    feedback: bool = True,
    feedback_every: int = 50,
    arm: str | None = None,
    admin_auth: str | None = None,
    pause_s: float = 0.0,
    max_seconds: float = 120.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> TrafficReport:
    """One ``/v1/predict`` per row (user ``users[i % len(users)]``), the true labels after every round.

    A 429 (the service's per-client rate limit) is retried after its ``Retry-After``, so the run slows
    down to what the service allows instead of failing.

    Args:
        feedback: post each answer's true label to ``/v1/feedback`` (rows without a label are skipped).
        feedback_every: predictions per round; a round's labels are posted before the next round starts.
        arm: force an arm with ``X-Force-Arm`` (champion | challenger | blue | green); None lets the router decide.
            The service answers a forced request only with ``admin_auth`` (401 / 403 otherwise), logs it as
            ``forced`` and leaves it out of every analysis.
        admin_auth: the service's MLOPS_ADMIN_TOKEN, sent as ``Authorization: Bearer`` with forced requests.
        pause_s: wait between rounds, so a bandit's reward sums reach the service's poller (one poll interval).
        max_seconds: time cap; rows not sent by then are counted in ``not_sent``.
    """
    if feedback_every < 1:
        raise ValueError(f"feedback_every must be >= 1, got {feedback_every}")
    report, began = TrafficReport(), clock()
    session = _Session(transport, began + max_seconds, clock, sleep)
    extra = {"X-Force-Arm": arm} if arm else {}
    if arm and admin_auth:
        extra["Authorization"] = f"Bearer {admin_auth}"
    broken = 0
    for start in range(0, len(rows), feedback_every):
        if start and pause_s > 0:
            sleep(pause_s)  # pacing the client, like real users spread over time; not synchronisation
        if clock() > session.deadline:
            report.not_sent, report.stopped = len(rows) - start, f"time cap of {max_seconds:g} s reached"
            break
        answered: list[tuple[str, str, str]] = []  # (row id, true label, feedback token) to send as feedback
        for i in range(start, min(start + feedback_every, len(rows))):
            row = rows[i]
            try:
                reply = session.call("POST", "/v1/predict", row.features, {"X-User-Id": users[i % len(users)], **extra})
            except (OSError, http.client.HTTPException) as err:
                broken += 1
                report.note_failure(f"predict: connection error {err}")
                if broken >= MAX_CONSECUTIVE_CONNECTION_ERRORS:
                    report.not_sent = len(rows) - i - 1
                    report.stopped = f"{broken} connection errors in a row: the service went away"
                    break
                continue
            broken = 0
            if reply.status != 200:
                report.note_failure(f"predict {reply.status}: {reply.body.get('error', reply.body)}")
                continue
            _count(report, reply.body, row, answered)
        if feedback:
            _send_feedback(session, answered, report)
        if report.stopped:
            break
    report.elapsed_s = clock() - began
    return report


def _count(report: TrafficReport, body: dict[str, Any], row: LabelledRow, answered: list[tuple[str, str, str]]) -> None:
    stats = report.arms.setdefault(str(body["arm"]), ArmStats())
    stats.requests += 1
    stats.versions[str(body["model_version"])] += 1
    stats.strategies[str(body["strategy"])] += 1
    prediction = body["predictions"][0]
    if row.label is not None:
        stats.labelled += 1
        stats.correct += str(prediction["class"]) == row.label
        answered.append((str(prediction["id"]), row.label, str(body.get("feedback_token", ""))))


def _send_feedback(session: _Session, answered: Sequence[tuple[str, str, str]], report: TrafficReport) -> None:
    for request_id, label, token in answered:
        try:
            body = {"request_id": request_id, "label": label}
            reply = session.call("POST", "/v1/feedback", body, {"X-Feedback-Token": token} if token else {})
        except (OSError, http.client.HTTPException) as err:
            report.note_failure(f"feedback: connection error {err}")
            continue
        report.feedback[str(reply.body.get("status", reply.status))] += 1
        if reply.status != 200:
            report.note_failure(f"feedback {reply.status}: {reply.body.get('message') or reply.body.get('error')}")
