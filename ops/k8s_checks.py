"""Policy checks on rendered Kubernetes objects, plus schema validation, as pure functions.

Concept: Kubernetes as code that is tested (C47, C48). A manifest can be valid YAML, pass the API
schema and still be wrong: a Service whose selector matches no pod routes to nothing, an HPA aimed
at a misspelt name never scales, a ``latest`` tag makes two pods of "the same" version run different
code. Each check below takes the objects ``kubectl kustomize`` rendered and returns the violations
it found (an empty list means it passed), so a test can feed it a broken object and watch it fail.

Schemas: core kinds are validated with ``kubernetes_validate`` (strict, Kubernetes 1.32, schemas
bundled offline). It knows no custom resources, so the Argo Rollouts kinds are validated against our
own schemas in ``k8s/schemas/`` (the fields we use, strictly); a kind with no schema at all is a
violation, never a silent skip.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ops.k8s_objects import (
    K8S_DIR,
    K8sObject,
    Workload,
    containers,
    find,
    kind_name,
    own_templates,
    selector_matches,
    workloads,
)

K8S_VERSION = "1.32"
PART_OF = "mlops-lab"
KEYS_ANNOTATION = "mlops-lab/keys"  # a Secret template lists its keys here
CUSTOM_SCHEMAS = {
    ("argoproj.io/v1alpha1", "Rollout"): "rollout-argoproj-v1alpha1.json",
    ("argoproj.io/v1alpha1", "AnalysisTemplate"): "analysistemplate-argoproj-v1alpha1.json",
}


@dataclass(frozen=True)
class Violation:
    """One broken rule: which check, which object (``Kind/name``), what is wrong."""

    check: str
    obj: str
    message: str

    def __str__(self) -> str:
        return f"[{self.check}] {self.obj}: {self.message}"


def _v(check: str, obj: K8sObject, message: str) -> Violation:
    return Violation(check, kind_name(obj), message)


def check_images(objects: list[K8sObject]) -> list[Violation]:
    """Every image names an immutable version: a digest or an explicit tag that is not ``latest``."""
    found = []
    for w in own_templates(objects):
        for c in containers(w):
            image = str(c.get("image", ""))
            if "@sha256:" in image:  # a digest names one build whatever the tag says
                continue
            tag = image.rsplit("/", 1)[-1].partition(":")[2]  # "host:5000/name" has a colon but no tag
            if not tag:
                found.append(_v("images", w.obj, f"container {c['name']}: image {image!r} has no tag (pin one)"))
            elif tag == "latest":
                found.append(_v("images", w.obj, f"container {c['name']}: image {image!r} uses the moving tag latest"))
    return found


def check_probes_and_resources(objects: list[K8sObject]) -> list[Violation]:
    """Long-running containers have readiness and liveness probes; jobs have a deadline instead.

    Every container requests CPU and memory and limits memory (a CPU limit is optional: it throttles).
    """
    found = []
    for w in own_templates(objects):
        if w.runs_to_completion:
            job = w.obj["spec"] if w.kind == "Job" else w.obj["spec"]["jobTemplate"]["spec"]
            if "activeDeadlineSeconds" not in job:
                found.append(_v("probes", w.obj, "a job needs activeDeadlineSeconds (its stand-in for liveness)"))
        for c in containers(w):
            if not w.runs_to_completion and c in w.pod_spec.get("containers", []):
                for probe in ("readinessProbe", "livenessProbe"):
                    if probe not in c:
                        found.append(_v("probes", w.obj, f"container {c['name']} has no {probe}"))
            res = c.get("resources", {})
            for where, key in (("requests", "cpu"), ("requests", "memory"), ("limits", "memory")):
                if key not in res.get(where, {}):
                    found.append(_v("resources", w.obj, f"container {c['name']} has no {where}.{key}"))
    return found


def check_security(objects: list[K8sObject]) -> list[Violation]:
    """Non-root, no privilege escalation, all capabilities dropped, read-only root with a writable /tmp."""
    found = []
    for w in own_templates(objects):
        pod_sc = w.pod_spec.get("securityContext", {})
        for c in containers(w):
            sc, name = c.get("securityContext", {}), c["name"]
            if not sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot", False)):
                found.append(_v("security", w.obj, f"container {name}: runAsNonRoot is not true"))
            if sc.get("runAsUser", pod_sc.get("runAsUser")) == 0:
                found.append(_v("security", w.obj, f"container {name}: runAsUser is 0 (root)"))
            if sc.get("allowPrivilegeEscalation") is not False or sc.get("privileged"):
                found.append(_v("security", w.obj, f"container {name}: set allowPrivilegeEscalation: false"))
            if "ALL" not in sc.get("capabilities", {}).get("drop", []):
                found.append(_v("security", w.obj, f"container {name}: capabilities must drop ALL"))
            if sc.get("seccompProfile", pod_sc.get("seccompProfile", {})).get("type") != "RuntimeDefault":
                found.append(_v("security", w.obj, f"container {name}: seccompProfile must be RuntimeDefault"))
            if sc.get("readOnlyRootFilesystem") is not True:
                found.append(_v("security", w.obj, f"container {name}: readOnlyRootFilesystem is not true"))
            elif not any(m.get("mountPath") == "/tmp" for m in c.get("volumeMounts", [])):  # noqa: S108 - a mount path
                found.append(_v("security", w.obj, f"container {name}: read-only root but no writable /tmp volume"))
    return found


def check_labels(objects: list[K8sObject]) -> list[Violation]:
    """Every object carries app.kubernetes.io/name and part-of; pod templates repeat their workload's."""
    found = []
    instances = {o["metadata"].get("labels", {}).get("app.kubernetes.io/instance") for o in objects}
    if len(instances) > 1:
        found.append(
            Violation("labels", "*", f"mixed app.kubernetes.io/instance values: {sorted(map(str, instances))}")
        )
    for obj in objects:
        labels = obj["metadata"].get("labels", {})
        if "app.kubernetes.io/name" not in labels:
            found.append(_v("labels", obj, "no app.kubernetes.io/name label"))
        if labels.get("app.kubernetes.io/part-of") != PART_OF:
            found.append(_v("labels", obj, f"app.kubernetes.io/part-of is not {PART_OF!r}"))
    for w in workloads(objects):
        own = w.obj["metadata"].get("labels", {})
        for key in ("app.kubernetes.io/name", "app.kubernetes.io/component", "app.kubernetes.io/part-of"):
            if own.get(key) != w.pod_labels.get(key):
                found.append(
                    _v("labels", w.obj, f"pod template {key}={w.pod_labels.get(key)!r}, workload {own.get(key)!r}")
                )
        selector = w.obj["spec"].get("selector")
        if w.kind != "CronJob" and not selector_matches(selector, w.pod_labels):
            found.append(_v("labels", w.obj, "its selector does not match its own pod template"))
    return found


def _pods(objects: list[K8sObject], selector: dict[str, Any] | None) -> list[Workload]:
    return [w for w in workloads(objects) if selector_matches(selector, w.pod_labels)]


def check_services(objects: list[K8sObject]) -> list[Violation]:
    """Every Service selects the pods of some workload, on a port those pods declare."""
    found = []
    for svc in (o for o in objects if o["kind"] == "Service"):
        selector = svc["spec"].get("selector")
        matched = _pods(objects, selector) if selector else []
        if not matched:
            found.append(_v("services", svc, f"selector {selector} matches no workload's pods"))
            continue
        names = {p.get("name") for w in matched for c in containers(w) for p in c.get("ports", [])}
        numbers = {p.get("containerPort") for w in matched for c in containers(w) for p in c.get("ports", [])}
        for port in svc["spec"].get("ports", []):
            target = port.get("targetPort", port["port"])
            if target not in names and target not in numbers:
                found.append(_v("services", svc, f"targetPort {target!r} is not a port of the selected pods"))
    return found


def check_autoscalers(objects: list[K8sObject]) -> list[Violation]:
    """Every HPA targets an object that exists, whose containers request the CPU it scales on."""
    found = []
    for hpa in (o for o in objects if o["kind"] == "HorizontalPodAutoscaler"):
        ref, spec = hpa["spec"]["scaleTargetRef"], hpa["spec"]
        target = find(objects, ref["kind"], ref["name"])
        if target is None:
            found.append(_v("autoscalers", hpa, f"scaleTargetRef {ref['kind']}/{ref['name']} does not exist"))
            continue
        if spec.get("minReplicas", 1) > spec["maxReplicas"]:
            found.append(_v("autoscalers", hpa, "minReplicas is above maxReplicas"))
        for w in (w for w in workloads(objects) if w.obj is target):
            for c in containers(w):
                if "cpu" not in c.get("resources", {}).get("requests", {}):
                    found.append(_v("autoscalers", hpa, f"target container {c['name']} requests no CPU"))
    return found


def _min_replicas(objects: list[K8sObject], w: Workload) -> int:
    for hpa in (o for o in objects if o["kind"] == "HorizontalPodAutoscaler"):
        ref = hpa["spec"]["scaleTargetRef"]
        if (ref["kind"], ref["name"]) == (w.kind, w.name):
            return int(hpa["spec"].get("minReplicas", 1))
    return w.replicas or 0


def check_disruption_budgets(objects: list[K8sObject]) -> list[Violation]:
    """Every PDB selects running pods and still lets one of them go (else node drains hang forever)."""
    found = []
    for pdb in (o for o in objects if o["kind"] == "PodDisruptionBudget"):
        matched = [w for w in _pods(objects, pdb["spec"].get("selector")) if w.replicas]
        if not matched:
            found.append(_v("disruption", pdb, "selector matches no running workload's pods"))
            continue
        replicas = sum(_min_replicas(objects, w) for w in matched)
        spec = pdb["spec"]
        if spec.get("maxUnavailable") == 0 or int(spec.get("minAvailable", 0)) >= replicas:
            found.append(_v("disruption", pdb, f"allows no disruption at {replicas} replica(s): drains would block"))
    return found


def check_network_policies(objects: list[K8sObject]) -> list[Violation]:
    """Policies select real pods and name real peers, and egress is denied by default.

    Every NetworkPolicy selects pods that exist, every in-namespace peer it allows (in or out) exists
    too, and one policy denies all egress, so a pod reaches only the peers some policy names.
    """
    found = []
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    if policies and not any(
        p["spec"].get("podSelector") in ({}, None)
        and p["spec"].get("policyTypes") == ["Egress"]
        and not p["spec"].get("egress")
        for p in policies
    ):
        found.append(_v("network", policies[0], "no default-deny egress policy: every pod may reach anything"))
    for pol in policies:
        if not _pods(objects, pol["spec"].get("podSelector")):
            found.append(_v("network", pol, "podSelector matches no workload's pods"))
        rules = [*pol["spec"].get("ingress", []), *pol["spec"].get("egress", [])]
        for rule in rules:
            for peer in [*rule.get("from", []), *rule.get("to", [])]:
                if (
                    "podSelector" in peer
                    and "namespaceSelector" not in peer
                    and not _pods(objects, peer["podSelector"])
                ):
                    found.append(_v("network", pol, f"allowed peer {peer['podSelector']} matches no workload's pods"))
    return found


def _refs(spec: K8sObject) -> Iterator[tuple[str, str, str | None]]:
    """(kind, name, key) of every ConfigMap, Secret and PVC a pod spec uses."""
    for c in [*spec.get("initContainers", []), *spec.get("containers", [])]:
        for src in c.get("envFrom", []):
            for field, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                if field in src:
                    yield kind, src[field]["name"], None
        for env in c.get("env", []):
            for field, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
                if field in env.get("valueFrom", {}):
                    ref = env["valueFrom"][field]
                    yield kind, ref["name"], ref["key"]
    for vol in spec.get("volumes", []):
        if "configMap" in vol:
            yield "ConfigMap", vol["configMap"]["name"], None
        if "secret" in vol:
            yield "Secret", vol["secret"]["secretName"], None
        if "persistentVolumeClaim" in vol:
            yield "PersistentVolumeClaim", vol["persistentVolumeClaim"]["claimName"], None


def check_references(objects: list[K8sObject]) -> list[Violation]:
    """Referenced ConfigMaps, Secrets (and their keys) and PVCs exist; Secrets commit no values."""
    found = []
    for secret in (o for o in objects if o["kind"] == "Secret"):
        if secret.get("data") or secret.get("stringData"):
            found.append(_v("references", secret, "a Secret in the repository holds values: commit none"))
    for w in own_templates(objects):
        for kind, name, key in _refs(w.pod_spec):
            target = find(objects, kind, name)
            if target is None:
                found.append(_v("references", w.obj, f"uses {kind}/{name}, which is not in the manifests"))
            elif key and kind == "Secret":
                declared = target["metadata"].get("annotations", {}).get(KEYS_ANNOTATION, "").split(",")
                if key not in declared:
                    found.append(_v("references", w.obj, f"Secret/{name} does not declare key {key}"))
            elif key and key not in target.get("data", {}):
                found.append(_v("references", w.obj, f"ConfigMap/{name} has no key {key}"))
    return found


def check_rollouts(objects: list[K8sObject]) -> list[Violation]:
    """A Rollout's Deployment, Services and analysis templates exist, and its selector matches its pods."""
    found = []
    for ro in (o for o in objects if o["kind"] == "Rollout"):
        spec, canary = ro["spec"], ro["spec"]["strategy"].get("canary", {})
        ref = spec.get("workloadRef")
        source = find(objects, ref["kind"], ref["name"]) if ref else None
        if ref and source is None:
            found.append(_v("rollouts", ro, f"workloadRef {ref['kind']}/{ref['name']} does not exist"))
        elif source is not None:
            if source["spec"].get("replicas") != 0:
                found.append(
                    _v("rollouts", ro, f"{kind_name(source)} must declare replicas: 0 (the Rollout runs the pods)")
                )
            if not selector_matches(spec.get("selector"), source["spec"]["template"]["metadata"].get("labels", {})):
                found.append(_v("rollouts", ro, "selector does not match the referenced pod template"))
        for field in ("stableService", "canaryService"):
            if field in canary and find(objects, "Service", canary[field]) is None:
                found.append(_v("rollouts", ro, f"{field} {canary[field]} does not exist"))
        analyses = [canary.get("analysis", {})] + [s["analysis"] for s in canary.get("steps", []) if "analysis" in s]
        for t in (t for a in analyses for t in a.get("templates", [])):
            if find(objects, "AnalysisTemplate", t["templateName"]) is None:
                found.append(_v("rollouts", ro, f"AnalysisTemplate {t['templateName']} does not exist"))
    return found


CHECKS: dict[str, Callable[[list[K8sObject]], list[Violation]]] = {
    "images": check_images,
    "probes+resources": check_probes_and_resources,
    "security": check_security,
    "labels": check_labels,
    "services": check_services,
    "autoscalers": check_autoscalers,
    "disruption budgets": check_disruption_budgets,
    "network policies": check_network_policies,
    "references": check_references,
    "rollouts": check_rollouts,
}


def run_checks(objects: list[K8sObject]) -> dict[str, list[Violation]]:
    """Every policy check on the objects: check name -> its violations (empty = passed)."""
    return {name: check(objects) for name, check in CHECKS.items()}


def validate_schemas(objects: list[K8sObject], version: str = K8S_VERSION) -> list[Violation]:
    """Each object against its schema: kubernetes-validate (strict) for core kinds, ours for Argo's."""
    import jsonschema
    import kubernetes_validate

    found = []
    for obj in objects:
        custom = CUSTOM_SCHEMAS.get((str(obj.get("apiVersion")), str(obj.get("kind"))))
        try:
            if custom:
                schema = json.loads((K8S_DIR / "schemas" / custom).read_text())
                jsonschema.Draft202012Validator(schema).validate(obj)
            else:
                kubernetes_validate.validate(obj, version, strict=True)
        except jsonschema.ValidationError as err:  # kubernetes_validate.ValidationError is a subclass
            where = ".".join(str(p) for p in err.absolute_path) or "(root)"
            found.append(_v("schema", obj, f"{where}: {err.message}"))
        except kubernetes_validate.SchemaNotFoundError as err:
            found.append(_v("schema", obj, f"{err.message}; add a schema to k8s/schemas/ and CUSTOM_SCHEMAS"))
    return found
