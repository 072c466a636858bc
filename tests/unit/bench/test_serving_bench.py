"""The serving benchmark's verdicts and its reading of the access log (the load generator: test_loadgen.py).

Speed is never asserted (``make bench`` measures it); these tests check that the generator counts,
pools and reports correctly, with made-up latencies and a tiny stdlib HTTP server on loopback.
"""

from __future__ import annotations

import pytest

from bench.harness import Row
from bench.loadgen import LoadResult, Target, run_load
from bench.serving_bench import FLOOR_ANSWER, _throughput_rows, floor_app
from tests.live_server import served_on_loopback


def _rounds(per_request_s: float) -> list[LoadResult]:
    """Three rounds of 100 requests taking ``per_request_s`` of wall time each."""
    return [LoadResult((0.001,) * 100, 0, 100 * per_request_s, 1)] * 3


def _runs(**per_request: float) -> dict[str, list[LoadResult]]:
    """Every subject of the one-worker run, 1 ms per request unless named (``ours_invocations=...``)."""
    names = ["ours /v1/predict", "ours /invocations", "ours sklearn /v1/predict", "ours sklearn /invocations",
             "bare", "floor", "mlflow serve"]  # fmt: skip
    keys = {n: n.replace(" /", "_").replace("/", "_").replace(" ", "_") for n in names}
    return {n: _rounds(per_request.get(keys[n], 1.0)) for n in names}


def _by_pair(rows: list[Row]) -> dict[tuple[str, str], Row]:
    return {(r.baseline, r.subject): r for r in rows}


FLOOR = "floor (raw ASGI, constant answer)"


@pytest.mark.parametrize(
    ("ours", "floor", "mlflow", "floor_passes", "mlflow_passes"),
    [(0.39, 0.10, 2.0, True, True), (0.41, 0.10, 2.1, False, True), (0.39, 0.10, 1.9, True, False)],
)
def test_at_concurrency_1_ours_is_held_to_4x_the_floor_and_a_fifth_of_mlflow_serve(
    ours: float, floor: float, mlflow: float, floor_passes: bool, mlflow_passes: bool
) -> None:
    runs = _runs(ours_v1_predict=ours, ours_invocations=ours, floor=floor, mlflow_serve=mlflow)
    rows = _by_pair(_throughput_rows(1, runs))
    native, invocations = rows[(FLOOR, "ours `/v1/predict`")], rows[(FLOOR, "ours `/invocations`")]
    assert [native.passed, invocations.passed] == [floor_passes, floor_passes]
    assert native.ratio == pytest.approx(ours / floor)  # time per request: ours / floor
    assert native.target == "≤ 4×"
    vs_mlflow = rows[("`mlflow models serve`", "ours `/invocations`")]
    assert vs_mlflow.passed is mlflow_passes
    assert vs_mlflow.ratio == pytest.approx(ours / mlflow)
    assert rows[("ours sklearn `/v1/predict`", "ours `/v1/predict`")].passed is None  # c=1: information only
    assert rows[(FLOOR, "ours sklearn `/v1/predict`")].passed is None  # "today about 12x": information


def test_the_floor_target_is_not_judged_with_the_python_client() -> None:
    """The Python client's own time per request dwarfs the floor's: the ratio would pass whatever the server did."""
    runs = _runs(ours_v1_predict=0.9, ours_invocations=0.9, floor=0.1)  # 9x the floor: a fail under wrk
    judged = _by_pair(_throughput_rows(1, runs, wrk=True))[(FLOOR, "ours `/v1/predict`")]
    assert judged.passed is False
    unjudged = _by_pair(_throughput_rows(1, runs, wrk=False))[(FLOOR, "ours `/v1/predict`")]
    assert unjudged.passed is None  # shown, not judged
    assert unjudged.target == "≤ 4×: judged with wrk only"
    assert unjudged.ratio == pytest.approx(9.0)


@pytest.mark.parametrize(("onnx", "sklearn", "passes"), [(0.5, 0.5, True), (0.51, 0.5, False), (0.2, 0.5, True)])
def test_under_concurrency_the_onnx_path_may_be_no_slower_than_the_sklearn_path(
    onnx: float, sklearn: float, passes: bool
) -> None:
    for c in (8, 64):
        runs = _runs(ours_v1_predict=onnx, ours_invocations=onnx, ours_sklearn_v1_predict=sklearn,
                     ours_sklearn_invocations=sklearn, mlflow_serve=10.0)  # fmt: skip
        rows = _by_pair(_throughput_rows(c, runs))
        for path in ("/v1/predict", "/invocations"):
            row = rows[(f"ours sklearn `{path}`", f"ours `{path}`")]
            assert row.passed is passes
            assert row.ratio == pytest.approx(onnx / sklearn)
            assert rows[(FLOOR, f"ours `{path}`")].passed is None  # the floor target is at c=1 only


@pytest.mark.parametrize(("ours_sklearn", "passes"), [(1.17, True), (1.18, False)])
def test_ours_on_sklearn_may_cost_at_most_15_percent_of_the_bare_endpoints_throughput(
    ours_sklearn: float, passes: bool
) -> None:
    runs = _runs(ours_sklearn_v1_predict=ours_sklearn, ours_sklearn_invocations=ours_sklearn, bare=1.0)
    rows = _by_pair(_throughput_rows(8, runs))
    for path in ("/v1/predict", "/invocations"):
        assert rows[("bare FastAPI", f"ours sklearn `{path}`")].passed is passes
    assert rows[("`mlflow models serve`", "bare FastAPI")].passed is None  # information, no target


def test_the_floor_reads_the_body_and_answers_its_constant_over_real_http() -> None:
    body = b'{"rows": [' + b",".join([b'{"x": 1.5}'] * 2000) + b"]}"  # several receive() messages
    with served_on_loopback(floor_app()) as url:
        target = Target(int(url.rsplit(":", 1)[1]), "/anything", body)
        conn = target.connect()
        statuses = [target.send(conn) for _ in range(3)]  # keep-alive: each body was read to its end
        conn.request("POST", "/predict", b"{}", {"Content-Type": "application/json"})
        answer = conn.getresponse()
        assert (answer.status, answer.read()) == (200, FLOOR_ANSWER)
        assert answer.getheader("content-type") == "application/json"
        conn.close()
        loaded = run_load(Target(target.port, "/predict", b"{}"), 2, requests=20, cap_s=20)
    assert statuses == [200, 200, 200]
    assert (loaded.ok, loaded.errors) == (20, 0)


def test_server_times_read_the_batch_lines_of_the_access_log_without_the_warm_up() -> None:
    from bench.serving_bench import BATCH_IDS, server_times

    native, mlflow = BATCH_IDS["ours /v1/predict"], BATCH_IDS["ours /invocations"]
    lines = [
        "INFO:     Started server process",
        f'{{"path": "/v1/predict", "status": 200, "latency_ms": 900.0, "request_id": "{native}"}}',  # warm-up
        f'{{"path": "/v1/predict", "status": 200, "latency_ms": 40.0, "request_id": "{native}"}}',
        '{"path": "/v1/predict", "status": 200, "latency_ms": 1.0, "request_id": "other"}',
        f'{{"path": "/invocations", "status": 200, "latency_ms": 800.0, "request_id": "{mlflow}"}}',
        f'{{"path": "/invocations", "status": 503, "latency_ms": 5.0, "request_id": "{mlflow}"}}',
        f'{{"path": "/invocations", "status": 200, "latency_ms": 30.0, "request_id": "{mlflow}"}}',
        f'{{"path": "/invocations", "status": 200, "latency_ms": 50.0, "request_id": "{mlflow}"}}',
    ]
    times = server_times(lines)
    assert times["ours /v1/predict"].samples == (0.04,)
    assert times["ours /invocations"].samples == (0.03, 0.05)  # the failed request is not a timing
    with pytest.raises(RuntimeError, match="MLOPS_ACCESS_LOG"):
        server_times(lines[:3])


def test_the_serving_section_renders_every_subject_and_the_c1_verdicts_from_tiny_inputs() -> None:
    from bench.harness import Report, Timing, render_markdown
    from bench.serving_bench import CONCURRENCY, _section

    one = {c: _runs(ours_v1_predict=0.3, ours_invocations=0.3, floor=0.1, mlflow_serve=2.0) for c in CONCURRENCY}
    two = {c: {n: _rounds(1.0) for n in ("ours sklearn ×2 /v1/predict", "bare ×2", "bare ×2, plain uvicorn")}
           for c in CONCURRENCY}  # fmt: skip
    timing = Timing((0.01, 0.02))
    batch = {"ours /v1/predict": timing, "ours /invocations": timing, "bare": timing, "mlflow serve": timing}
    server = {"ours /v1/predict": timing, "ours /invocations": timing}
    bodies = {"row": b"{}", "mlflow_row": b"{}", "rows": b"{}", "mlflow_rows": b"{}"}
    section = _section(one, two, batch, server, {"row": timing, "batch": timing}, 30.0, bodies, [], "wrk", "onnx")
    markdown = render_markdown(Report([section], {}, {}, "2026-12-07T00:00:00+00:00", 1.0))
    floor_row = next(line for line in markdown.splitlines() if "c=1 | floor" in line and "ours `/v1/predict`" in line)
    assert "| 3.00× | ≤ 4× | pass |" in floor_row  # 0.3 ms per request over the floor's 0.1 ms
    assert "ours served the champion through onnx" in markdown
    assert "Where the time goes (a profile, not this run)" in markdown
    assert "ours does 6.7× mlflow serve's requests/s (target ≥ 5×) and takes 3.0× the floor's" in markdown
    assert "**FAIL**" not in markdown.split("| time per request, 2 workers")[0]  # every one-worker target met


def test_the_profile_note_accounts_for_the_whole_request_and_names_the_floors_share() -> None:
    from bench.serving_bench import HOT_PATH_PROFILE, MODEL_PART, profile_note

    assert sum(HOT_PATH_PROFILE.values()) == pytest.approx(100, abs=0.2)  # every sample given to one part
    note = profile_note()
    listed = note.split(". So ")[0].split("; ")
    shares = [float(part.split(" % ")[0].rsplit(" ", 1)[-1]) for part in listed]
    assert shares == sorted(shares, reverse=True)  # largest first
    server = sum(v for k, v in HOT_PATH_PROFILE.items() if k.startswith(("uvicorn", "the event loop")))
    assert f"So {server:.1f} % is uvicorn and the event loop" in note
    assert f"the model is {HOT_PATH_PROFILE[MODEL_PART]:g} %" in note
