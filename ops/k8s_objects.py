"""Rendered Kubernetes manifests as plain data: render an overlay, find its workloads, read quantities.

Concept: infrastructure as code (C48). What reaches a cluster is not the files under ``k8s/`` but
what ``kubectl kustomize k8s/overlays/<env>`` renders from them (base + overlay patches, generated
ConfigMap names, pinned images), so every check and the capacity test work on that rendering, as a
list of dicts. The only I/O here is `render`; everything else is a pure function of the objects.

A workload is anything that makes pods from a template: Deployment, StatefulSet, Job, CronJob and
the Argo Rollouts ``Rollout``, whose template comes from the Deployment its ``workloadRef`` names.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.paths import REPO

K8S_DIR = REPO / "k8s"
OVERLAYS = ("dev", "prod")
K8sObject = dict[str, Any]


class KubectlMissingError(RuntimeError):
    """kubectl is not on PATH; the message says how to install it."""


class RenderError(RuntimeError):
    """kubectl kustomize refused the overlay; the message carries its error."""


def render(overlay: str | Path, timeout_s: float = 60.0) -> list[K8sObject]:
    """Render ``k8s/overlays/<overlay>`` (a name) or a kustomization folder (a Path) with ``kubectl kustomize``.

    Raises:
        KubectlMissingError: kubectl is not installed.
        RenderError: the kustomization does not build.
    """
    import yaml

    path = overlay if isinstance(overlay, Path) else K8S_DIR / "overlays" / overlay
    exe = shutil.which("kubectl")
    if exe is None:
        raise KubectlMissingError(
            "kubectl is not on PATH: install it (e.g. `apt-get install -y kubectl` from the Kubernetes apt "
            "repository, or the static binary from dl.k8s.io); `kubectl kustomize` renders the overlays offline"
        )
    result = subprocess.run(
        [exe, "kustomize", str(path)], capture_output=True, text=True, timeout=timeout_s, check=False
    )
    if result.returncode != 0:
        raise RenderError(f"kubectl kustomize {path} failed: {result.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def kind_name(obj: K8sObject) -> str:
    """``Kind/name``, the way kubectl names an object."""
    return f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"


def find(objects: list[K8sObject], kind: str, name: str) -> K8sObject | None:
    """The object of that kind and name, or None."""
    return next((o for o in objects if o.get("kind") == kind and o["metadata"].get("name") == name), None)


@dataclass(frozen=True)
class Workload:
    """Something that makes pods: its object, its pod template and its replica count (None: a Job).

    ``borrowed`` marks a template that belongs to another object (a Rollout's ``workloadRef``), so
    checks of the template itself look at it once, on its owner.
    """

    obj: K8sObject
    template: K8sObject
    borrowed: bool = False

    @property
    def kind(self) -> str:
        return str(self.obj["kind"])

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])

    @property
    def pod_labels(self) -> dict[str, str]:
        return dict(self.template.get("metadata", {}).get("labels", {}))

    @property
    def pod_spec(self) -> K8sObject:
        return dict(self.template.get("spec", {}))

    @property
    def runs_to_completion(self) -> bool:
        return self.kind in ("Job", "CronJob")

    @property
    def replicas(self) -> int | None:
        return None if self.runs_to_completion else int(self.obj["spec"].get("replicas", 1))


def workloads(objects: list[K8sObject]) -> Iterator[Workload]:
    """Every workload with its pod template (a Rollout's comes from its ``workloadRef``)."""
    for obj in objects:
        kind, spec = obj.get("kind"), obj.get("spec", {})
        if kind in ("Deployment", "StatefulSet", "Job"):
            yield Workload(obj, spec.get("template", {}))
        elif kind == "CronJob":
            yield Workload(obj, spec.get("jobTemplate", {}).get("spec", {}).get("template", {}))
        elif kind == "Rollout":
            ref = spec.get("workloadRef")
            source = find(objects, ref["kind"], ref["name"]) if ref else None
            template = source["spec"]["template"] if source else spec.get("template", {})
            yield Workload(obj, template, borrowed=source is not None)


def own_templates(objects: list[K8sObject]) -> Iterator[Workload]:
    """The workloads that own their pod template (each template once)."""
    return (w for w in workloads(objects) if not w.borrowed)


def containers(workload: Workload) -> list[K8sObject]:
    """The workload's init containers and containers."""
    spec = workload.pod_spec
    return [*spec.get("initContainers", []), *spec.get("containers", [])]


def selector_matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """Does a label selector (``matchLabels`` / ``matchExpressions``, or a Service's plain map) select ``labels``?

    An empty selector selects everything, as in Kubernetes.
    """
    if not selector:
        return True
    match = selector.get("matchLabels", {} if "matchExpressions" in selector else selector)
    if any(labels.get(k) != v for k, v in match.items()):
        return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": labels.get(key) not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


_CPU = re.compile(r"^([0-9.]+)(m?)$")
_MEMORY = re.compile(r"^([0-9.]+)(Ki|Mi|Gi|Ti|k|K|M|G|T)?$")
_MEMORY_UNITS = {
    None: 1,
    "k": 10**3,
    "K": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


def cpu_cores(quantity: str | int | float) -> float:
    """A CPU quantity in cores: ``"500m"`` -> 0.5, ``"2"`` -> 2.0."""
    found = _CPU.match(str(quantity))
    if not found:
        raise ValueError(f"not a CPU quantity: {quantity!r} (use cores like '1' or millicores like '500m')")
    value = float(found.group(1))
    return value / 1000 if found.group(2) else value


def memory_bytes(quantity: str | int) -> int:
    """A memory quantity in bytes: ``"512Mi"`` -> 536870912."""
    found = _MEMORY.match(str(quantity))
    if not found:
        raise ValueError(f"not a memory quantity: {quantity!r} (use e.g. '512Mi' or '1Gi')")
    return int(float(found.group(1)) * _MEMORY_UNITS[found.group(2)])
