"""Demo traffic for the serving demos: the real API in process, realistic rows, true labels back.

Concepts: REST serving (C18) and the feedback loop (C38). The progressive-delivery demos need users
sending requests and, later, the ground truth arriving. Here both go through the same FastAPI app
that ``mlops-lab serve`` runs, driven by Starlette's TestClient *inside* ``with`` so the lifespan
loads the aliased models, opens the prediction log and starts the poller; a burst of requests is sent
in the app's own event loop (httpx's ASGI transport), one after the other. Rows come from the batch
generator's ``clean`` kind (drawn from per-class Gaussians fitted to the raw data, with their true
class), so every answer can be scored: each prediction is followed by ``POST /v1/feedback`` with the
true label, as a labelling process would do hours later in production. Each label goes with the
``X-Feedback-Token`` its answer carried: only the caller that got an answer (or an operator with the
admin token) may label it. The demo service runs with an admin token (the context's, else the
workshop's), and `DemoService.admin` is the header an operator sends, e.g. with ``X-Force-Arm``.

Routing changes are written to the shared state store, as the rollout controller or an operator's
command does, and then ``poller.refresh()`` applies them at once: that is what every worker's
poller does within ``poll_interval_s``. `running_service` puts the routing state back as it found
it, so a demo never leaves another strategy switched on.

The models the traffic goes to: `ensure_challenger` trains a challenger through the quality gate
when there is no usable one, and `plant_bad_challenger` registers a deliberately wrong one (trained
on labels with two classes swapped), clearly marked as planted, so the guard rails have something
to catch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from core.mlflow_config import mlflow_client
from lab.demos.prep import ensure_raw_data
from pipelines.batches import generate_batch
from pipelines.data import read_csv
from pipelines.fit import fit_and_evaluate
from pipelines.registry import current_aliases, register_candidate
from pipelines.tracking import log_training_run
from pipelines.training_steps import gate_candidate, load_data, register_or_reject, train_candidate
from serving.app import create_app

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from core.context import LabContext
    from lab.narrate import Narrator
    from serving.router import RoutingState
    from serving.runtime import Runtime
    from serving.state_store import StateStore


@dataclass
class Traffic:
    """What one burst of single-row requests got back, per arm."""

    arms: Counter[str] = field(default_factory=Counter)  # arm -> requests answered
    correct: Counter[str] = field(default_factory=Counter)  # arm -> answers equal to the true label
    versions: Counter[str] = field(default_factory=Counter)  # model version -> requests answered
    arm_of_user: dict[str, str] = field(default_factory=dict)
    bodies: list[dict[str, Any]] = field(default_factory=list)  # the JSON answers, in order
    failed: int = 0  # non-200 answers
    feedback: Counter[str] = field(default_factory=Counter)  # feedback status -> count

    @property
    def total(self) -> int:
        return sum(self.arms.values())

    def share(self, arm: str) -> float:
        """The arm's share of the answered requests (0 when nothing was answered)."""
        return self.arms[arm] / self.total if self.total else 0.0

    def accuracy(self, arm: str) -> float | None:
        return self.correct[arm] / self.arms[arm] if self.arms[arm] else None


DEMO_ADMIN_TOKEN = "workshop-admin-token-example"  # noqa: S105 - a published token, for in-process demos only


class DemoService:
    """The serving app under a TestClient, plus the shared state store it reads its routing from."""

    def __init__(self, client: TestClient, ctx: LabContext) -> None:
        self.client, self.ctx = client, ctx
        self.runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
        self._reference: Any = None

    @property
    def admin(self) -> dict[str, str]:
        """The operator's header: ``Authorization: Bearer <admin token>`` (needed by X-Force-Arm, admin routes)."""
        return {"Authorization": f"Bearer {self.runtime.settings.admin_token}"}

    def label(self, answer: Mapping[str, Any], label: str, row_id: str | None = None) -> tuple[int, dict[str, Any]]:
        """POST one true label for a /v1/predict answer (its first row unless ``row_id``), with its feedback token."""
        body = {"request_id": row_id or answer["predictions"][0]["id"], "label": label}
        response = self.client.post("/v1/feedback", json=body, headers={"X-Feedback-Token": answer["feedback_token"]})
        return response.status_code, response.json()

    @property
    def store(self) -> StateStore:
        if self.runtime.store is None:
            raise RuntimeError("the service is not running: use it inside `with running_service(ctx)`")
        return self.runtime.store

    def refresh(self) -> bool:
        """One poll, now: reload models whose alias moved (True) and re-read the routing state."""
        if self.runtime.poller is None:
            raise RuntimeError("the service is not running: use it inside `with running_service(ctx)`")
        return self.runtime.poller.refresh()

    def apply(self, change: Callable[[RoutingState], RoutingState]) -> RoutingState:
        """Write a routing change to the shared store (compare-and-swap) and apply it at once."""
        state = self.store.update_routing(change)
        self.refresh()
        return state

    def route(self, **changes: Any) -> RoutingState:
        """Set routing fields (strategy, canary_weight, ab_split, ...) and apply them at once."""
        return self.apply(lambda s: replace(s, **changes))

    def flush(self) -> None:
        """Wait until every prediction served so far is in the prediction log."""
        if self.runtime.log is not None:
            self.runtime.log.flush()

    def rows(self, count: int, seed: int, kind: str = "clean") -> Any:
        """``count`` rows of a batch kind (clean, covariate-shift, ...) with their true class, from ``seed``."""
        if self._reference is None:
            self._reference = read_csv(ensure_raw_data(self.ctx))
        return generate_batch(kind, self._reference, self.ctx.params, rows=count, seed=seed)

    def send(
        self,
        users: Sequence[str],
        seed: int,
        *,
        feedback: bool = True,
        headers: Mapping[str, str] | None = None,
        kind: str = "clean",
    ) -> Traffic:
        """One single-row request per user id (``X-User-Id``), then the true label for each answer.

        ``kind`` is the batch generator's kind the rows are drawn from: ``covariate-shift`` is a drifted world.
        """
        dataset = self.ctx.params.dataset
        frame = self.rows(len(users), seed, kind)
        traffic, truth = Traffic(), []
        records = frame[dataset.feature_names].to_dict("records")
        labels = frame[dataset.target].astype(str).tolist()
        calls = [(row, {"X-User-Id": user, **(headers or {})}) for user, row in zip(users, records, strict=True)]
        answers = self.post_in_order("/v1/predict", calls)
        for user, label, (status, body) in zip(users, labels, answers, strict=True):
            if status != 200:
                traffic.failed += 1
                continue
            arm, answer = body["arm"], body["predictions"][0]
            traffic.arms[arm] += 1
            traffic.correct[arm] += answer["class"] == label
            traffic.versions[body["model_version"]] += 1
            traffic.arm_of_user[user] = arm
            traffic.bodies.append(body)
            truth.append((answer["id"], label, body["feedback_token"]))
        if feedback:
            self.flush()  # the log writes off the request path; one flush instead of one per label
            replies = self.post_in_order(
                "/v1/feedback",
                [({"request_id": rid, "label": label}, {"X-Feedback-Token": token}) for rid, label, token in truth],
            )
            for status, body in replies:
                traffic.feedback[body.get("status", str(status))] += 1
        return traffic

    def post_in_order(
        self, path: str, calls: Sequence[tuple[Mapping[str, Any], Mapping[str, str]]]
    ) -> list[tuple[int, dict[str, Any]]]:
        """POST each (JSON body, headers) to ``path``, one after the other, inside the service's event loop.

        The same app and the same requests as ``client.post`` in a loop, but the whole burst crosses from
        this thread into the app's event loop once instead of once per request.
        Answers come back in order as (status code, JSON body; ``{}`` when the body is not JSON).
        """
        portal = self.client.portal
        if portal is None:
            raise RuntimeError("the service is not running: use it inside `with running_service(ctx)`")
        return portal.call(_post_each, self.client.app, path, calls)


async def _post_each(
    app: Any, path: str, calls: Sequence[tuple[Mapping[str, Any], Mapping[str, str]]]
) -> list[tuple[int, dict[str, Any]]]:
    import httpx

    answers: list[tuple[int, dict[str, Any]]] = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        for body, headers in calls:
            response = await client.post(path, json=body, headers=dict(headers))
            try:
                answer = response.json()
            except ValueError:
                answer = {}
            answers.append((response.status_code, answer if isinstance(answer, dict) else {}))
    return answers


@contextmanager
def running_service(ctx: LabContext, restore_routing: bool = True) -> Iterator[DemoService]:
    """Start the serving app in process; on exit, put the routing state back as it was found."""
    from fastapi.testclient import TestClient

    # Hundreds of simulated users share one in-process client (one "IP"), so the per-client rate limit
    # (a protection for the real port) is off for this demo service.
    token = ctx.settings.admin_token or DEMO_ADMIN_TOKEN
    settings = ctx.settings.model_copy(update={"rate_limit_per_s": 0.0, "access_log": False, "admin_token": token})
    with TestClient(create_app(settings, ctx.params)) as client:
        service = DemoService(client, ctx)
        found = service.store.routing()
        try:
            yield service
        finally:
            if restore_routing:
                service.apply(lambda _: found)


def users(prefix: str, count: int) -> list[str]:
    """Stable user ids (``prefix-000`` ...): the same users come back in every round."""
    return [f"{prefix}-{i:03d}" for i in range(count)]


def arm_table(traffic: Traffic) -> list[list[object]]:
    """Rows for a per-arm table: arm, requests, share, online accuracy from the true labels."""
    rows: list[list[object]] = []
    for arm in sorted(traffic.arms):
        accuracy = traffic.accuracy(arm)
        rows.append(
            [arm, traffic.arms[arm], f"{traffic.share(arm):.1%}", "-" if accuracy is None else f"{accuracy:.1%}"]
        )
    return rows


ARM_COLUMNS = ["arm", "requests", "share", "online accuracy"]
PLANTED_GATE = {"passed": True, "reasons": ["planted for the demo: bypasses the quality gate"]}


def ensure_challenger(ctx: LabContext, n: Narrator) -> str | None:
    """A usable challenger's version, training one through the quality gate if needed (None if refused).

    Usable: not rejected, not rolled back and not planted by a demo.
    """
    s, p = ctx.settings, ctx.params
    challenger = current_aliases(s).get("challenger")
    if challenger is not None:
        tags = mlflow_client(s).get_model_version(s.model_name, challenger).tags
        if tags.get("status") not in ("rejected", "rolled_back") and tags.get("planted") != "true":
            return challenger
        n.say(f"challenger v{challenger} is {tags.get('status')}{' (planted)' if tags.get('planted') else ''}")
    n.say("training a challenger with the same recipe; the quality gate compares it with the champion")
    data = load_data(ensure_raw_data(ctx))  # the raw file the champion was validated on (data-validation demo)
    result, logged, _ = train_candidate(s, p, data)
    outcome = register_or_reject(s, p, result, logged, gate_candidate(s, p, result), data)
    if outcome.version is None:
        n.bad(f"the gate refused the new challenger: {'; '.join(outcome.gate.get('reasons', []))}")
        return None
    n.ok(f"registered v{outcome.version} as alias {outcome.alias} (gate passed)")
    return outcome.version


def plant_bad_challenger(ctx: LabContext, n: Narrator) -> str:
    """Register a model trained on concept-shifted labels as challenger, bypassing the gate (tagged planted)."""
    s, p = ctx.settings, ctx.params
    a, b = p.batches.concept_shift.swap or (p.dataset.classes[-2], p.dataset.classes[-1])
    shifted = generate_batch("concept-shift", read_csv(ensure_raw_data(ctx)), p, rows=300, seed=11)
    result = fit_and_evaluate(shifted, p)  # learns the swapped labels
    tags = {"planted": "true", "source": f"demo: planted bad challenger ({a} <-> {b} swapped)"}
    logged = log_training_run(s, p, result, tags, run_name="planted-bad-challenger")
    reason = f"PLANTED by a demo: trained on labels with {a} and {b} swapped"
    version = register_candidate(s, logged.run_id, logged.model_uri, PLANTED_GATE, None, s.actor, reason).version
    mlflow_client(s).set_model_version_tag(s.model_name, version, "planted", "true")
    n.bad(f"PLANTED v{version} as challenger: trained on labels with {a} and {b} swapped")
    n.say(
        f"offline it looks fine: {result.evaluation.metrics['accuracy']:.0%} accuracy on its own (equally "
        "mislabelled) test split. The quality gate would still refuse it (it compares with the champion on "
        "real held-out rows), so the demo registers it with a hand-written gate result that says PLANTED."
    )
    return version
