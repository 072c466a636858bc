"""The bottom layer: settings, parameters and the data contract, findings, and MLflow configured once.

Every other package may import this one; it imports nothing of ours. See docs/architecture.md for the layers.
"""
