"""The Lambda image (docker/lambda.Dockerfile) can install and import what it ships, checked without Docker.

Three things a build on AWS would find out late: the locked runtime wheels must load on the base image's C
library (the Python 3.11 Lambda images run Amazon Linux 2, glibc 2.26, too old for the lock's numpy,
scipy, scikit-learn and onnxruntime wheels; the 3.12 images run Amazon Linux 2023, glibc 2.34); the image
copies exactly the packages the handler imports; and the CMD names a handler that exists.
"""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.tags import parse_tag
from packaging.utils import parse_wheel_filename

from ops.images import dockerfile_instructions

REPO = Path(__file__).resolve().parents[3]
DOCKERFILE = REPO / "docker/lambda.Dockerfile"
SHIPPED = ("core", "pipelines", "serving")
LEFT_OUT = ("monitoring", "flows", "ops", "bench", "lab", "cli")
# The Lambda base images' Python and the glibc of their operating system (AWS Lambda runtimes page).
AMAZON_LINUX_2 = ("3.11", (2, 26))
AMAZON_LINUX_2023 = ("3.12", (2, 34))


def runtime_requirements() -> list[tuple[str, str]]:
    """(name, version) of every package `uv export --no-dev` installs for CPython 3.12 on Linux x86_64."""
    uv = shutil.which("uv") or str(REPO / ".tools/bin/uv")
    if not Path(uv).exists():
        pytest.fail("uv is missing: `make setup` installs it (.tools/bin/uv)")
    done = subprocess.run(
        [uv, "export", "--frozen", "--no-dev", "--no-emit-project", "--no-hashes", "--no-header", "--no-annotate"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    found = []
    for line in done.stdout.splitlines():
        requirement, _, marker = line.partition(";")
        if "==" not in requirement:
            continue
        name, version = (part.strip() for part in requirement.split("=="))
        found.append((name, version, marker.strip()))
    return [(n, v) for n, v, m in found if not m or Marker(m).evaluate(_environment("3.12"))]


def _environment(python: str) -> dict[str, str]:
    return {
        "python_version": python,
        "python_full_version": f"{python}.0",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": "x86_64",
        "os_name": "posix",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "extra": "",
    }


def _loads(wheel: str, python: str, glibc: tuple[int, int]) -> bool:
    """Can CPython ``python`` on Linux x86_64 with ``glibc`` install this wheel file?"""
    major, minor = (int(p) for p in python.split("."))
    for tag in parse_wheel_filename(wheel)[3]:
        interpreter_ok = tag.interpreter in {f"cp{major}{minor}", "py3", f"py{major}{minor}"} or (
            tag.abi == "abi3" and re.fullmatch(r"cp3\d+", tag.interpreter) and int(tag.interpreter[3:]) <= minor
        )
        abi_ok = tag.abi in {f"cp{major}{minor}", "abi3", "none"}
        platform = tag.platform
        if platform == "any":
            platform_ok = True
        else:
            legacy = {"manylinux1_x86_64": (2, 5), "manylinux2010_x86_64": (2, 12), "manylinux2014_x86_64": (2, 17)}
            match = re.fullmatch(r"manylinux_(\d+)_(\d+)_x86_64", platform)
            needed = (int(match.group(1)), int(match.group(2))) if match else legacy.get(platform)
            platform_ok = needed is not None and needed <= glibc
        if interpreter_ok and abi_ok and platform_ok:
            return True
    return False


def unloadable(python: str, glibc: tuple[int, int], packages: list[tuple[str, str]]) -> list[str]:
    """The locked packages that have wheels but none that loads on that Python and glibc."""
    lock = tomllib.loads((REPO / "uv.lock").read_text(encoding="utf-8"))
    wheels = {
        (p["name"], p["version"]): [w["url"].rsplit("/", 1)[1] for w in p.get("wheels", [])] for p in lock["package"]
    }
    bad = []
    for name, version in packages:
        files = wheels.get((name, version), [])
        if files and not any(_loads(f, python, glibc) for f in files):
            bad.append(name)
    return sorted(bad)


def test_every_locked_runtime_wheel_loads_on_the_lambda_base_image() -> None:
    packages = runtime_requirements()
    assert {"mangum", "numpy", "scikit-learn", "onnxruntime", "fastapi"} <= {name for name, _ in packages}
    assert unloadable(*AMAZON_LINUX_2023, packages) == []


def test_the_python_3_11_lambda_images_could_not_load_them() -> None:
    """The negative control, and the reason docker/lambda.Dockerfile is on Python 3.12."""
    assert parse_tag("cp311-cp311-manylinux_2_28_x86_64")  # the tag grammar the check reads
    too_new = unloadable(*AMAZON_LINUX_2, runtime_requirements())
    assert {"numpy", "scikit-learn", "onnxruntime"} <= set(too_new)


def test_the_image_copies_exactly_the_packages_the_handler_imports() -> None:
    instructions = dockerfile_instructions(DOCKERFILE.read_text())
    copied = [args.split()[0] for keyword, args in instructions if keyword == "COPY" and not args.startswith("--")]
    assert tuple(c for c in copied if (REPO / c / "__init__.py").exists()) == SHIPPED
    block = (
        "import sys\n"
        "class Absent:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] in {LEFT_OUT!r}:\n"
        "            raise ModuleNotFoundError(f'No module named {name!r} (left out of the Lambda image)')\n"
        "sys.meta_path.insert(0, Absent())\n"
        "import serving.lambda_handler\n"
        "print(callable(serving.lambda_handler.handler))\n"
    )
    done = subprocess.run([sys.executable, "-c", block], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"


def test_the_cmd_names_the_handler_function() -> None:
    [cmd] = [args for keyword, args in dockerfile_instructions(DOCKERFILE.read_text()) if keyword == "CMD"]
    module, _, function = cmd.strip('[]"').rpartition(".")
    assert callable(getattr(importlib.import_module(module), function))
