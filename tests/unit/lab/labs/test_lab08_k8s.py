"""Lab 8's checker, the pure parts: the answer's range, the autoscaler's range, a saved render's first difference."""

from __future__ import annotations

from lab.labs.lab08_k8s import autoscaler_range, first_difference, parse_range


def test_parse_range_reads_two_numbers_in_any_spelling() -> None:
    assert parse_range("2-4") == (2, 4)
    assert parse_range(" 2 .. 4 ") == (2, 4)
    assert parse_range("from 2 to 4") == (2, 4)
    assert parse_range("4") is None
    assert parse_range("1-2-3") is None


def _hpa(name: str, low: int, high: int) -> dict:
    return {
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name},
        "spec": {"scaleTargetRef": {"kind": "Rollout", "name": name}, "minReplicas": low, "maxReplicas": high},
    }


def test_autoscaler_range_and_first_difference_on_plain_objects() -> None:
    svc = {"kind": "Service", "metadata": {"name": "x"}, "spec": {}}
    fresh = [svc, _hpa("mlops-lab-api", 2, 4)]
    assert autoscaler_range(fresh) == (2, 4)
    assert autoscaler_range([svc]) is None
    assert first_difference(list(fresh), fresh) is None
    hpa = "HorizontalPodAutoscaler/mlops-lab-api"
    assert first_difference([svc, _hpa("mlops-lab-api", 2, 5)], fresh) == f"{hpa} differs"
    assert first_difference([svc], fresh) == f"{hpa} is missing from your file"
    extra = {"kind": "ConfigMap", "metadata": {"name": "old"}}
    assert first_difference([*fresh, extra], fresh) == "ConfigMap/old is not in the current render"
