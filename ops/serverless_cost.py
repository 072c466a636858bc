"""Cost per million requests on a serverless function against always-on pods: the arithmetic, stated.

Concept: serverless deployment (C55) beside cost and capacity (C51). A function is billed per request and
per GB-second (memory configured x billed duration); a pod is billed per hour whether it serves or idles.
So the function is cheap at low or bursty traffic and the pods win once traffic keeps them busy. Prices
are ASSUMPTIONS: AWS's public list prices for Lambda (x86) and HTTP APIs in us-east-1 as we read them, not
a quote, and they change; every figure here is one multiplication away from them, so swap in your own.
The pod side is docs/capacity.md's (k8s/capacity.yaml).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class FunctionPrices:
    """List prices in USD (assumptions, see the module docstring)."""

    per_million_requests: float = 0.20  # Lambda requests
    per_gb_second: float = 0.0000166667  # Lambda duration, x86
    gateway_per_million: float = 1.00  # API Gateway HTTP API, first 300 million a month
    billing_step_s: float = 0.001  # duration is rounded up to the millisecond


@dataclass(frozen=True)
class FunctionCost:
    """What a million requests cost on the function, in parts."""

    requests: float
    duration: float
    cold_starts: float
    gateway: float

    @property
    def total(self) -> float:
        return self.requests + self.duration + self.cold_starts + self.gateway


def billed_seconds(duration_s: float, prices: FunctionPrices) -> float:
    """A duration rounded up to the billing step."""
    steps = math.ceil(round(duration_s / prices.billing_step_s, 9))
    return max(1, steps) * prices.billing_step_s


def cost_per_million(
    warm_s: float, memory_gb: float, cold_start_s: float, cold_per_million: float, prices: FunctionPrices
) -> FunctionCost:
    """A million requests, each billed ``warm_s`` at ``memory_gb``; ``cold_per_million`` also pay a cold start."""
    gb_s = memory_gb * prices.per_gb_second
    return FunctionCost(
        requests=prices.per_million_requests,
        duration=1e6 * billed_seconds(warm_s, prices) * gb_s,
        cold_starts=cold_per_million * billed_seconds(cold_start_s, prices) * gb_s,
        gateway=prices.gateway_per_million,
    )


def breakeven_millions_per_month(pods_per_month: float, function_per_million: float) -> float:
    """Monthly volume (millions of requests) above which the always-on pods cost less than the function."""
    return pods_per_month / function_per_million
