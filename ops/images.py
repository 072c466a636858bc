"""Immutable image tags: every image we build names the commit it came from, and the API image its champion.

Concept: immutable infrastructure (C29). A running container is never patched: a change is a new image
with a new tag, rolled out, and rolled back by redeploying the old tag. That only works if a tag names
exactly one build, so ours are computed, never chosen: ``<git sha, 12 hex>`` for images without a model
and ``<git sha>-m<champion version>`` for the API, whose release is cut for one champion. A commit or a
promotion therefore changes a tag, and the same inputs always give the same tag. ``latest`` (or a
missing tag, which means ``latest``) is refused everywhere: it moves, so two hosts pulling it can run
different code, and a rollback to "the previous latest" has nothing to point at. A dirty worktree is
refused too, since the image would hold code no commit has; ``--allow-dirty`` builds one for local use
and marks it ``-dirty``. Upstream images must carry an exact version (``python:3.11.7-slim-bookworm``,
not ``python:3.11``); a digest (``@sha256:...``) is stronger still. Everything here is pure except
``read_git_state``, which asks git.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

SHA_CHARS = 12
DIRTY_SUFFIX = "-dirty"
NO_CHAMPION = "0"  # MLflow versions start at 1, so m0 means "released before any champion existed"
FLOATING_TAGS = frozenset({"latest", "stable", "edge", "nightly", "main", "master", "dev"})
# Projects whose exact releases have two numbers: PostgreSQL since 10 numbers them major.minor.
TWO_PART_VERSIONS = frozenset({"postgres"})
_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")  # Docker's grammar for a tag
_VERSION_RE = re.compile(r"v?(\d+)\.(\d+)(?:\.(\d+))?(?![\d.])")
_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
# AWS Lambda base images are rebuilt under a dated tag per build: <python>.<yyyy>.<mm>.<dd>.<hh>[-arch]
_DATED_BUILD_RE = re.compile(r"\d+\.\d+\.20\d\d\.\d\d\.\d\d\.\d\d(?:-(?:x86_64|arm64))?")


class ImageTagError(ValueError):
    """No immutable tag can be computed (dirty tree, no git, no champion); the message says what to do."""


@dataclass(frozen=True)
class GitState:
    sha: str  # full commit sha of HEAD
    dirty_files: tuple[str, ...] = ()  # `git status --porcelain` paths: modified, staged or untracked

    @property
    def dirty(self) -> bool:
        return bool(self.dirty_files)


@dataclass(frozen=True)
class ImageSpec:
    name: str
    dockerfile: str  # repository path
    env_var: str  # the compose variable that holds its reference
    carries_model: bool  # tagged with the champion version too
    in_compose: bool = True  # built by docker/compose.yaml (the Lambda image is deployed to AWS Lambda instead)


IMAGES: tuple[ImageSpec, ...] = (
    ImageSpec("mlops-lab-api", "docker/api.Dockerfile", "API_IMAGE", carries_model=True),
    ImageSpec("mlops-lab-pipeline", "docker/pipeline.Dockerfile", "PIPELINE_IMAGE", carries_model=False),
    ImageSpec("mlops-lab-mlflow", "docker/mlflow.Dockerfile", "MLFLOW_IMAGE", carries_model=False),
    ImageSpec("mlops-lab-lambda", "docker/lambda.Dockerfile", "LAMBDA_IMAGE", carries_model=True, in_compose=False),
)


@dataclass(frozen=True)
class TaggedImage:
    spec: ImageSpec
    tag: str
    registry: str = ""

    @property
    def reference(self) -> str:
        prefix = f"{self.registry.rstrip('/')}/" if self.registry else ""
        return f"{prefix}{self.spec.name}:{self.tag}"


def read_git_state(repo: Path) -> GitState:
    """HEAD's sha and the paths that differ from it (untracked ones too: they would enter the build context).

    Raises:
        ImageTagError: ``repo`` is not a git checkout or has no commit yet.
    """
    try:
        sha = _git(repo, "rev-parse", "--verify", "HEAD").strip()
        status = _git(repo, "status", "--porcelain", "--untracked-files=all")
    except (OSError, subprocess.SubprocessError) as err:
        raise ImageTagError(
            f"cannot read the git commit of {repo}: {err}. Images are tagged by commit: build from a git "
            "checkout with at least one commit."
        ) from err
    return GitState(sha=sha, dirty_files=tuple(line[3:] for line in status.splitlines() if line.strip()))


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True, timeout=30).stdout


def check_model_version(version: str) -> str:
    """The version as a plain integer string (MLflow's numbering; ``0`` = no champion yet)."""
    if not version.isdigit() or (len(version) > 1 and version.startswith("0")):
        raise ImageTagError(
            f"model version {version!r} is not a registry version number: pass the champion's version "
            f"(`mlops-lab registry list` shows them), or {NO_CHAMPION} for a first release before any champion"
        )
    return version


def image_tag(git: GitState, model_version: str | None = None, *, allow_dirty: bool = False) -> str:
    """``<sha12>`` or ``<sha12>-m<version>``, plus ``-dirty`` for an allowed dirty tree.

    Raises:
        ImageTagError: the worktree is dirty and ``allow_dirty`` is off, or the sha or version is malformed.
    """
    if not re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", git.sha):
        raise ImageTagError(f"{git.sha!r} is not a full git commit sha")
    if git.dirty and not allow_dirty:
        shown = ", ".join(git.dirty_files[:3]) + (" ..." if len(git.dirty_files) > 3 else "")
        raise ImageTagError(
            f"the worktree has {len(git.dirty_files)} uncommitted change(s) ({shown}): an image built now would "
            f"hold code that commit {git.sha[:SHA_CHARS]} does not. Commit first, or pass --allow-dirty for a "
            f"local-only image tagged '{DIRTY_SUFFIX}'."
        )
    tag = git.sha[:SHA_CHARS]
    if model_version is not None:
        tag += f"-m{check_model_version(model_version)}"
    return tag + (DIRTY_SUFFIX if git.dirty else "")


def plan_tags(
    git: GitState, champion: str | None, *, allow_dirty: bool = False, registry: str = ""
) -> list[TaggedImage]:
    """One tagged reference per Dockerfile: the API carries the champion's version, the others the sha only.

    Raises:
        ImageTagError: no champion is known (the API's tag needs one) or ``image_tag`` refuses.
    """
    if champion is None:
        raise ImageTagError(
            "no champion in the registry, and the API image's tag names one: train a first model "
            "(`mlops-lab train`), point MLOPS_TRACKING_URI at the registry the release is for, or pass "
            f"--model-version {NO_CHAMPION} for a first bring-up before any champion exists"
        )
    return [
        TaggedImage(spec, image_tag(git, champion if spec.carries_model else None, allow_dirty=allow_dirty), registry)
        for spec in IMAGES
    ]


def env_lines(git: GitState, images: list[TaggedImage], champion: str) -> list[str]:
    """``KEY=value`` lines for docker/compose.yaml: build metadata and one reference per image the stack builds."""
    revision = git.sha + (DIRTY_SUFFIX if git.dirty else "")
    return [f"GIT_REVISION={revision}", f"MODEL_VERSION={champion}"] + [
        f"{image.spec.env_var}={image.reference}" for image in images if image.spec.in_compose
    ]


def split_reference(reference: str) -> tuple[str, str | None, str | None]:
    """(repository, tag or None, digest or None) of an image reference such as ``host:5000/a/b:1.2@sha256:..``."""
    rest, _, digest = reference.partition("@")
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:  # a colon after the last slash separates the tag; before it, a registry port
        return rest[:colon], rest[colon + 1 :], digest or None
    return rest, None, digest or None


def pinning_problem(reference: str) -> str | None:
    """Why ``reference`` is not an immutable choice of image, or None when it is.

    Accepted: a ``@sha256:`` digest, or a tag holding an exact version (major.minor.patch, or major.minor
    for projects numbered that way, `TWO_PART_VERSIONS`, or a dated build such as the Lambda base images'
    ``3.12.2026.10.03.13``); for our own `IMAGES`, a computed release tag.
    Refused: no tag (that is ``latest``), a floating tag (``latest``, ``stable``...), a partial version
    (``3.11``) or a malformed tag.
    """
    repository, tag, digest = split_reference(reference)
    if digest is not None:
        return None if _DIGEST_RE.fullmatch(digest) else f"{reference}: malformed digest (want sha256:<64 hex>)"
    if tag is None:
        return f"{reference}: no tag, so Docker pulls `latest`, which moves; name an exact version"
    if not _TAG_RE.fullmatch(tag):
        return f"{reference}: {tag!r} is not a valid tag"
    if tag.lower() in FLOATING_TAGS:
        return f"{reference}: `{tag}` moves to whatever was pushed last; name an exact version"
    short_name = repository.rsplit("/", 1)[-1]
    if short_name in {spec.name for spec in IMAGES}:  # ours: only a computed release tag will do
        return None if is_release_tag(tag) else f"{reference}: our images carry `mlops-lab images tags` tags only"
    if _DATED_BUILD_RE.fullmatch(tag):  # one build of a base image, e.g. public.ecr.aws/lambda/python
        return None
    version = _VERSION_RE.match(tag)
    if version is None:
        return f"{reference}: tag {tag!r} is not an exact version (want major.minor.patch, e.g. 3.11.7)"
    if version.group(3) is None and short_name not in TWO_PART_VERSIONS:
        return f"{reference}: {version.group(0)} is a series that moves with each patch; pin major.minor.patch"
    return None


def is_release_tag(tag: str) -> bool:
    """True for a tag `image_tag` can produce (``<sha12>[-m<n>][-dirty]``)."""
    return re.fullmatch(rf"[0-9a-f]{{{SHA_CHARS}}}(?:-m(?:0|[1-9]\d*))?(?:{DIRTY_SUFFIX})?", tag) is not None


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs of a Dockerfile: comments dropped, continuation lines joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):  # a comment inside a continued instruction
            continue
        pending += (" " if pending else "") + line.removesuffix("\\").strip()
        if line.endswith("\\"):
            continue
        keyword, _, arguments = pending.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    if pending:
        keyword, _, arguments = pending.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
    return instructions
