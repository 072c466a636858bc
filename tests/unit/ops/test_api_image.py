"""The API image ships only what serving needs: core/, pipelines/, serving/ and cli/ (the API and the stream workers).

docker/api.Dockerfile copies those four packages into the wheel it installs (hatchling builds the
wheel from what is there). This holds two ways: the Dockerfile copies exactly these packages, and in a
fresh interpreter where every other package of ours cannot be imported, `mlops-lab serve --help`
runs and the app factory builds the app, so the packages left out are not needed by the API.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ops.images import dockerfile_instructions

REPO = Path(__file__).resolve().parents[3]
SHIPPED = ("core", "pipelines", "serving", "cli")
LEFT_OUT = ("monitoring", "flows", "ops", "bench", "lab")

# A meta-path finder that refuses the packages the image leaves out, as if they were not installed.
BLOCK = f"""
import sys
class Absent:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {LEFT_OUT!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (left out of the API image)")
        return None
sys.meta_path.insert(0, Absent())
"""


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BLOCK + code], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_api_dockerfile_copies_exactly_the_packages_the_api_needs() -> None:
    instructions = dockerfile_instructions((REPO / "docker/api.Dockerfile").read_text())
    copied = [args.split()[0] for keyword, args in instructions if keyword == "COPY" and not args.startswith("--")]
    packages = [c for c in copied if (REPO / c).is_dir() and (REPO / c / "__init__.py").exists()]
    assert tuple(packages) == SHIPPED


def test_the_cli_serves_without_the_packages_left_out() -> None:
    code = "from cli.app import app; app(['serve', '--help'], standalone_mode=False)"
    result = _run(code)
    assert result.returncode == 0, result.stderr
    assert "Serve the model API" in result.stdout


def test_the_stream_worker_runs_from_the_api_image_without_the_packages_left_out() -> None:
    """docker/compose.yaml and k8s/base/stream-scorer.yaml run `mlops-lab stream-score` from this image (C63)."""
    code = (
        "from cli.app import app\n"
        "app(['stream-score', '--help'], standalone_mode=False)\n"
        "import core.context, core.redact, serving.contract, serving.metrics, serving.runtime  # what it loads lazily\n"
        "from serving.stream_worker import serve_stream\n"
    )
    result = _run(code)
    assert result.returncode == 0, result.stderr
    assert "Score feature events from the Redis stream" in result.stdout


def test_the_app_builds_without_the_packages_left_out(tmp_path: Path) -> None:
    code = (
        "from pathlib import Path\n"
        "from core.settings import Settings\n"
        "from serving.app import create_app\n"
        f"app = create_app(Settings(project_dir=Path({str(REPO)!r}), state_dir=Path({str(tmp_path)!r})))\n"
        "print(len(app.openapi()['paths']))\n"
    )
    result = _run(code)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip()) > 10


def test_the_block_is_real() -> None:
    """The finder does refuse what the image leaves out (else the two tests above prove nothing)."""
    result = _run("import lab.catalog")
    assert result.returncode != 0
    assert "left out of the API image" in result.stderr
