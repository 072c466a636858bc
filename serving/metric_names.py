"""The naming scheme of every series on ``/metrics`` (docs/metrics.md, "Names").

- HTTP traffic uses the names every Prometheus user already knows: ``http_requests_total{route,method,status}``
  and the histogram ``http_request_duration_seconds{route,method}``;
- every other series of ours starts with ``mlops_`` (`PREFIX`, written out in full where a series is
  defined, so a grep for the name finds its producer), so one ``{__name__=~"mlops_.+"}`` finds them all
  and none collides with a generic name of another exporter;
- base units end the name: ``_seconds``, ``_rows``, ``_ratio`` (0 to 1), ``_timestamp_seconds``; counters
  end in ``_total``, value-1 gauges that carry labels in ``_info``;
- label names are snake_case and label values are bounded: route templates, never raw paths, and an
  HTTP method outside `HTTP_METHODS` is counted as ``other``.

tests/unit/monitoring/test_metric_names.py checks a real scrape against these rules and every consumer
(alert and recording rules, the Grafana dashboard, the Argo Rollouts analysis, docs/metrics.md) against
the scrape.
"""

from __future__ import annotations

PREFIX = "mlops_"
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "other"
