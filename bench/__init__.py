"""Measurements: benchmarks against baselines, the load generator, the traffic client, statistical studies."""
