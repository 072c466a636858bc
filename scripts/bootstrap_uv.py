"""Put uv on a machine that has only a stock python3: no pip, no venv module, no sudo needed.

`make` runs this when ``uv`` is not on PATH. ``python3 -m pip install uv`` fails on a stock Debian 12
or Ubuntu 24.04 python3 (PEP 668: externally managed) and ``python3 -m venv`` needs python3-venv,
which may be absent. uv ships as a wheel on PyPI whose only content is the binary, so this script,
with the standard library alone, asks the package index for that wheel (PEP 691 JSON, or the PEP 503
HTML page), picks the one for this OS and CPU, checks its sha256 against the index, and unpacks the
``uv`` binary into ``<dest>/bin``. It honours ``UV_INDEX_URL`` / ``PIP_INDEX_URL`` (a mirror), and
prints the binary's path. The version is pinned: the one the Dockerfiles build with. Needs python3 >= 3.9.

    python3 scripts/bootstrap_uv.py [--dest .tools] [--version X.Y.Z] [--index-url URL]
"""

from __future__ import annotations

import argparse
import hashlib
import html.parser
import io
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

VERSION = "0.13.9"  # = docker/*.Dockerfile's ghcr.io/astral-sh/uv:<version>
DEFAULT_INDEX = "https://pypi.org/simple"
JSON_ACCEPT = "application/vnd.pypi.simple.v1+json, text/html;q=0.5"


class BootstrapError(RuntimeError):
    """uv could not be installed; the message says why and what to do instead."""


def platform_tags(system: str | None = None, machine: str | None = None, libc: str | None = None) -> list[str]:
    """Wheel platform tags that run here, most specific first."""
    system = system or platform.system()
    machine = (machine or platform.machine()).lower()
    arch = {"amd64": "x86_64", "x86_64": "x86_64", "arm64": "aarch64", "aarch64": "aarch64"}.get(machine, machine)
    if system == "Darwin":
        return ["macosx_11_0_arm64", "universal2"] if arch == "aarch64" else ["macosx_10_12_x86_64", "universal2"]
    if system == "Linux":
        libc = platform.libc_ver()[0] if libc is None else libc
        return [f"musllinux_1_1_{arch}"] if libc != "glibc" else [f"manylinux_2_17_{arch}", f"manylinux2014_{arch}"]
    raise BootstrapError(f"no uv wheel for {system} {machine}: install uv yourself (https://docs.astral.sh/uv/)")


class _Links(html.parser.HTMLParser):
    """The anchors of a PEP 503 simple page: (file name, href)."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self._href: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href = dict(attrs).get("href")

    def handle_data(self, data: str) -> None:
        if self._href is not None and data.strip():
            self.links.append((data.strip(), self._href))
            self._href = None


def index_files(index_url: str) -> list[tuple[str, str, str | None]]:
    """(file name, absolute URL, sha256 or None) of every uv file the index lists."""
    page = index_url.rstrip("/") + "/uv/"
    if urllib.parse.urlsplit(page).scheme not in ("http", "https"):
        raise BootstrapError(f"the package index must be an http(s) URL, got {index_url!r}")
    request = urllib.request.Request(page, headers={"Accept": JSON_ACCEPT})  # noqa: S310 - scheme checked above
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - scheme checked above
            body, kind = response.read(), response.headers.get("Content-Type", "")
    except OSError as err:
        raise BootstrapError(f"cannot read the package index {page}: {err}") from err
    if "json" in kind:
        files = json.loads(body)["files"]
        return [(f["filename"], urllib.parse.urljoin(page, f["url"]), f.get("hashes", {}).get("sha256")) for f in files]
    parser = _Links()
    parser.feed(body.decode("utf-8", errors="replace"))
    out = []
    for name, href in parser.links:
        url, _, fragment = urllib.parse.urljoin(page, href).partition("#")
        digest = fragment.removeprefix("sha256=") if fragment.startswith("sha256=") else None
        out.append((name, url, digest))
    return out


def pick_wheel(files: list[tuple[str, str, str | None]], version: str, tags: list[str]) -> tuple[str, str, str]:
    """The wheel of ``version`` for the first matching tag, with its sha256."""
    wheels = [f for f in files if f[0].startswith(f"uv-{version}-") and f[0].endswith(".whl")]
    for tag in tags:
        for name, url, digest in wheels:
            platforms = name[: -len(".whl")].split("-")[-1].split(".")
            if tag in platforms:
                if not digest:
                    raise BootstrapError(f"the index gives no sha256 for {name}: refusing an unverified binary")
                return name, url, digest
    raise BootstrapError(f"the index lists no uv {version} wheel for {', '.join(tags)}")


def install(index_url: str, version: str, dest: Path) -> Path:
    """Download, verify and unpack uv into ``dest/bin``; returns the binary."""
    name, url, digest = pick_wheel(index_files(index_url), version, platform_tags())
    print(f"bootstrap: fetching {name} from {urllib.parse.urlsplit(url).netloc}", file=sys.stderr)
    try:
        with urllib.request.urlopen(url, timeout=300) as response:  # noqa: S310
            wheel = response.read()
    except OSError as err:
        raise BootstrapError(f"cannot download {url}: {err}") from err
    if hashlib.sha256(wheel).hexdigest() != digest:
        raise BootstrapError(f"{name}: sha256 differs from the index's; nothing installed")
    bin_dir = dest / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(wheel)) as archive:
        member = f"uv-{version}.data/scripts/uv"
        if member not in archive.namelist():
            raise BootstrapError(f"{name} holds no {member}")
        with tempfile.NamedTemporaryFile(dir=bin_dir, delete=False) as tmp:
            tmp.write(archive.read(member))
        target = bin_dir / "uv"
        os.replace(tmp.name, target)  # a half-written binary is never left under the final name
    target.chmod(0o755)
    return target


def working_version(binary: Path) -> str | None:
    try:
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.match(r"uv (\S+)", out.stdout)
    return match.group(1) if match else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Install uv from the package index with the standard library only.")
    parser.add_argument("--dest", type=Path, default=Path(".tools"), help="folder to install into (bin/uv)")
    parser.add_argument("--version", default=VERSION)
    parser.add_argument("--index-url", default=os.environ.get("UV_INDEX_URL") or os.environ.get("PIP_INDEX_URL"))
    args = parser.parse_args(argv)
    binary = args.dest / "bin" / "uv"
    if working_version(binary) == args.version:
        print(binary)
        return 0
    try:
        binary = install(args.index_url or DEFAULT_INDEX, args.version, args.dest)
    except BootstrapError as err:
        print(f"bootstrap: {err}", file=sys.stderr)
        return 1
    if working_version(binary) != args.version:
        print(f"bootstrap: {binary} does not run here; see https://docs.astral.sh/uv/", file=sys.stderr)
        return 1
    print(binary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
