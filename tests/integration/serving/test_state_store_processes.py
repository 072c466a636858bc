"""Two worker processes share one state store: no lost increment, no lost routing update.

Each child opens the same SQLite file (WAL), prints ``READY``, waits for ``GO`` on stdin (so both start
their writes together without any sleep), then interleaves compare-and-swap routing updates with bandit
rewards and prints what it saw as JSON.

Runs on SQLite (WAL) by default. To run it on PostgreSQL too, install a driver (``psycopg[binary]``) and set
``MLOPS_TEST_POSTGRES_URL=postgresql+psycopg://user:pw@host/db``; the state tables there are dropped first.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from core.params import RoutingParams
from serving.state_store import StateStore
from tests.fresh_database import drop_our_tables

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[3]
UPDATES, REWARDS = 120, 240
STEP = 1 / 1024  # a power of two: any sum of up to 1024 steps is exact, so a lost update shows as a miss

CHILD = r"""
import json, sys
from dataclasses import replace
from core.params import RoutingParams
from serving.state_store import StateStore, metadata

url, step = sys.argv[1], float(sys.argv[5])
worker, updates, rewards = (int(a) for a in sys.argv[2:5])
store = StateStore(url, RoutingParams())
store.routing(), store.bandit()  # connect and warm up before the race starts
print("READY", flush=True)
assert sys.stdin.readline().strip() == "GO"
versions = []
for i in range(rewards):
    store.add_reward("champion" if i % 2 else "challenger", (1.0, 0.0, 0.25, 0.5)[(i + worker) % 4])
    if i % 2 == 0 and len(versions) < updates:
        new = store.update_routing(lambda s: replace(s, ab_split=s.ab_split + step), retries=1000)
        versions.append(new.version)
store.close()
print(json.dumps({"versions": versions}), flush=True)
"""


@pytest.fixture
def url(database_url: str) -> str:
    if database_url.startswith("postgresql"):
        store = StateStore(database_url, RoutingParams())
        drop_our_tables(store.engine)  # the children race to migrate the database again
        store.close()
    return database_url


def test_two_processes_share_exact_counts_and_lose_no_routing_update(url: str) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, url, str(w), str(UPDATES), str(REWARDS), str(STEP)],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(2)
    ]
    watchdogs = [threading.Timer(60, p.kill) for p in procs]  # bounds the test if a child hangs
    for w in watchdogs:
        w.start()
    try:
        for p in procs:  # both children created the tables concurrently and are connected
            assert p.stdout is not None
            line = p.stdout.readline()
            assert line.strip() == "READY", p.communicate()[1]
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("GO\n")
            p.stdin.flush()
        outputs = [p.communicate(timeout=60) for p in procs]
    finally:
        for w in watchdogs:
            w.cancel()
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
    seen = [json.loads(out)["versions"] for out, _ in outputs]

    for versions in seen:  # each worker saw its own writes land on ever newer versions
        assert len(versions) == UPDATES
        assert all(a < b for a, b in itertools.pairwise(versions))
    assert sorted(seen[0] + seen[1]) == list(range(1, 2 * UPDATES + 1))  # every version won by exactly one

    store = StateStore(url, RoutingParams())
    routing, bandit, token = store.routing(), store.bandit(), store.change_token()
    store.close()
    assert routing.version == 2 * UPDATES
    assert routing.ab_split == RoutingParams().ab_split + 2 * UPDATES * STEP  # no read-modify-write lost
    total = 2 * REWARDS
    assert sum(bandit.successes.values()) == total * (1.0 + 0.0 + 0.25 + 0.5) / 4
    assert sum(bandit.successes.values()) + sum(bandit.failures.values()) == total
    assert token == (2 * UPDATES, 0, total)
