"""``mlops-lab traffic`` against a real uvicorn server on loopback: answers, labels, failures, no server.

The server is the app ``mlops-lab serve`` runs, under uvicorn in a thread of this process on a socket
bound to an ephemeral loopback port; it is stopped in the fixture's teardown. The CLI runs through
typer's CliRunner with the state folder in its environment, and what it reports is compared with
the prediction log the server wrote.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from cli.app import app
from core.context import LabContext

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory, make_settings, demo_context) -> Iterator[LabContext]:
    from lab.demos.prep import ensure_champion, ensure_raw_data

    lab_ctx = demo_context(make_settings(tmp_path_factory.mktemp("traffic-cli") / "state"))
    ensure_raw_data(lab_ctx)
    ensure_champion(lab_ctx)
    # The CLI reads params from a file: a copy whose dataset path points into this state, not the repo.
    params_file = lab_ctx.settings.state / "params.yaml"
    document = yaml.safe_load((REPO / "params.yaml").read_text())
    document["dataset"]["path"] = lab_ctx.params.dataset.path
    params_file.write_text(yaml.safe_dump(document))
    patch = pytest.MonkeyPatch()
    patch.setenv("MLOPS_PARAMS_FILE", str(params_file))
    patch.setenv("MLOPS_STATE_DIR", str(lab_ctx.settings.state))
    patch.setenv("MLOPS_PROJECT_DIR", str(REPO))
    try:
        yield lab_ctx
    finally:
        patch.undo()


@pytest.fixture(scope="module")
def url(ctx: LabContext) -> Iterator[str]:
    """The serving app under real uvicorn on 127.0.0.1:<ephemeral port>, ready (readiness polled, bounded)."""
    import http.client

    import uvicorn

    from serving.app import create_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(ctx.settings, ctx.params), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while True:  # readiness poll with a deadline
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/readyz")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("the service did not become ready within 60 s")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def test_traffic_reports_each_arm_and_its_labels_reach_the_prediction_log(ctx: LabContext, url: str) -> None:
    from serving.log_reader import labelled_window

    csv = ctx.settings.resolve(ctx.params.dataset.path)
    args = ["traffic", "--url", url, "--csv", str(csv), "--rows", "40", "--users", "10", "--feedback-every", "15"]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "40 answers" in result.output
    assert "champion" in result.output
    assert "v1" in result.output
    assert "feedback (true labels sent back): 40 recorded" in result.output
    labelled = labelled_window(ctx.settings.prediction_log_uri)
    assert len(labelled) == 40
    assert f"{int(labelled['correct'].sum())}/40" in result.output  # the CLI's count agrees with the log


def test_batch_kinds_are_sent_and_a_refused_request_makes_the_exit_code_1(ctx: LabContext, url: str) -> None:
    runner = CliRunner()
    shifted = runner.invoke(
        app,
        ["traffic", "--url", url, "--kind", "covariate-shift", "--rows", "20", "--no-feedback"],
        env={"COLUMNS": "200"},
    )
    assert shifted.exit_code == 0, shifted.output
    assert "20 covariate-shift rows" in " ".join(shifted.output.split())  # rich may wrap the line at 80 columns
    # forcing an arm is for operators: without MLOPS_ADMIN_TOKEN every request is refused (401)
    forced = runner.invoke(app, ["traffic", "--url", url, "--rows", "5", "--arm", "challenger"], env={"COLUMNS": "200"})
    assert forced.exit_code == 1
    assert "predict 401" in forced.output
    assert "5 request(s) failed" in forced.output


def test_no_service_is_a_clear_error_naming_the_command_to_start_it(ctx: LabContext) -> None:
    with socket.socket() as sock:  # a port nobody listens on: bound, never listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        result = CliRunner().invoke(app, ["traffic", "--url", f"http://127.0.0.1:{port}", "--rows", "3"])
    assert result.exit_code == 1
    assert f"mlops-lab serve --port {port}" in result.output
