"""Bring Prefect's local API up in the background while a demo does its other cold work.

The first flow run of a process starts Prefect's local API: a server subprocess whose database is
created and migrated on first use, several seconds on 2 cores before the flow's first task runs. A
demo has cold work of its own (imports, a fresh MLflow store, a first model, traffic), so it starts
the API at the top in a thread and joins it just before its first flow run: the server comes up in
its own process while the demo works, and the learner waits for the longer of the two instead of
their sum. The flow itself is unchanged (it finds the API up); with ``PREFECT_API_URL`` set the
thread only greets the real server. A failure here is swallowed: the flow run reports it properly.
``preload`` imports the heavy libraries the demo's flows will need (Great Expectations, Evidently:
seconds each on a cold start) in the main thread meanwhile, the other core being the server's.
"""

from __future__ import annotations

import importlib
import threading

JOIN_TIMEOUT_S = 120.0


class PrefectWarmup:
    """A started background greeting of Prefect's API; ``wait()`` before the first flow run."""

    def __init__(self) -> None:
        self.error: Exception | None = None
        self._thread = threading.Thread(target=self._hello, name="prefect-warmup", daemon=True)
        self._thread.start()

    def _hello(self) -> None:
        try:
            from prefect.client.orchestration import get_client

            with get_client(sync_client=True) as client:
                client.hello()
        except Exception as err:  # the flow run raises the real error, with its context
            self.error = err

    def wait(self) -> None:
        """Block until the API answered (or the greeting failed); two servers must never race to start."""
        self._thread.join(JOIN_TIMEOUT_S)


def preload(*modules: str) -> None:
    """Import ``modules`` now, so the flows that need them later do not pay their import on the clock."""
    for name in modules:
        importlib.import_module(name)
