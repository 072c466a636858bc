"""The ports the local UIs are started on by default (``mlops-lab ui`` prints them).

MLflow's own default, 5000, is taken by AirPlay Receiver on macOS, so the MLflow UI starts on 5050;
Prefect keeps its own default. Here in core so the CLI can use them where ``lab/`` is not installed.
"""

MLFLOW_UI_PORT = 5050
PREFECT_UI_PORT = 4200
