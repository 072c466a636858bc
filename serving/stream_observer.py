"""What a stream-scoring worker tells an observer about each scored message, and what it hears back.

Concept: real-time anomaly detection on the stream (C36, C63). The worker (serving) must not import the detector
(monitoring sits above serving), so it takes any object with an `observe` method: after a message is acked as
scored, the worker hands it the event and its prediction and exports the answer on /metrics
(``mlops_stream_anomaly_score``, ``mlops_stream_anomalies_total``). The CLI, the top layer, wires in
`monitoring.stream_anomaly.StreamAnomalyDetector`; a test can pass a fake.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, Protocol

if TYPE_CHECKING:
    from serving.predict import Served
    from serving.stream_messages import Event


class Alarm(NamedTuple):
    """An observer's verdict on one message: its score (a robust z-score) and whether it is an anomaly."""

    score: float
    anomaly: bool


class ScoredObserver(Protocol):
    """Fed every scored message once, in stream order, by the worker that acked it."""

    def observe(self, event: Event, served: Served) -> Alarm: ...
