"""The closed loop's Prefect flows: monitoring, retraining and the canary rollout, above the three domains.

Each flow takes settings and parameters as arguments and wires pipelines/, serving/ and monitoring/
together; the training flow itself lives in pipelines/ (it is how a model is made).
"""
