"""Demo ``k8s``: render the overlays, walk the objects, validate and police them, size prod from a benchmark.

Concepts: Kubernetes and scaling (C47), infrastructure as code and config management (C48), cost and
capacity (C51). No cluster is needed: what a cluster would receive is exactly what ``kubectl kustomize``
renders, so the demo renders it, validates every object against the Kubernetes 1.32 schema (and the
Argo Rollouts kinds against ours), runs the policy checks, then breaks two objects to show the checks
bite. It ends with what differs between dev and prod (only sizes, hosts and tags) and the capacity plan
that fixes prod's numbers, including what the canary's weights really mean with so few pods.
"""

from __future__ import annotations

import copy
import json
import time
from typing import TYPE_CHECKING, Any

from ops.capacity import build_plan, canary_traffic_shares, overlay_mismatches
from ops.k8s_checks import CHECKS, K8S_VERSION, check_images, check_services, validate_schemas
from ops.k8s_objects import OVERLAYS, cpu_cores, find, kind_name, render

if TYPE_CHECKING:
    from core.context import LabContext
    from lab.narrate import Narrator
    from ops.k8s_objects import K8sObject

SKIP_DIFF = ("metadata.namespace", "metadata.labels.app.kubernetes.io/instance")


def describe(obj: K8sObject) -> str:
    """The settings that matter for one object, in a line."""
    kind, spec = obj["kind"], obj.get("spec", {})
    if kind in ("Deployment", "StatefulSet"):
        c = spec["template"]["spec"]["containers"][0]
        req = c.get("resources", {}).get("requests", {})
        probes = "+".join(
            p.removesuffix("Probe") for p in ("startupProbe", "readinessProbe", "livenessProbe") if p in c
        )
        image, cpu = c["image"].rsplit("/", 1)[-1], cpu_cores(req.get("cpu", 0))
        return f"replicas {spec.get('replicas', 1)}, {image}, cpu {cpu:g}, mem {req.get('memory')}, probes {probes}"
    if kind == "Rollout":
        weights = [s["setWeight"] for s in spec["strategy"]["canary"]["steps"] if "setWeight" in s]
        templates = [t["templateName"] for t in spec["strategy"]["canary"]["analysis"]["templates"]]
        source = spec["workloadRef"]["kind"]
        return f"replicas {spec['replicas']}, pods from {source}, canary {weights} + analysis {templates}"
    if kind == "HorizontalPodAutoscaler":
        target = spec["metrics"][0]["resource"]["target"]["averageUtilization"]
        bounds = f"{spec.get('minReplicas', 1)}-{spec['maxReplicas']}"
        return f"{spec['scaleTargetRef']['kind']} {bounds} pods at {target} % CPU"
    if kind == "PodDisruptionBudget":
        return f"maxUnavailable {spec.get('maxUnavailable')} of {spec['selector']['matchLabels']}"
    if kind == "Service":
        ports = ",".join(str(p["port"]) for p in spec["ports"])
        return f"port {ports} -> {'headless ' if spec.get('clusterIP') == 'None' else ''}{spec['selector']}"
    if kind == "Ingress":
        rule = spec["rules"][0]
        return f"{rule['host']}: " + " ".join(p["path"] for p in rule["http"]["paths"])
    if kind == "CronJob":
        c = spec["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
        return f"'{spec['schedule']}' {' '.join([*c['command'], *c['args']])}, {spec['concurrencyPolicy']}"
    if kind == "NetworkPolicy":
        peers = [p for r in spec.get("ingress", []) for p in r["from"]]
        allowed = ", ".join(str(next(iter(p.values()))["matchLabels"]) for p in peers) or "nobody"
        return f"{spec['podSelector'].get('matchLabels', 'all pods')} <- {allowed}"
    if kind == "Secret":
        return f"keys {obj['metadata']['annotations']['mlops-lab/keys']} (no values committed)"
    if kind == "ConfigMap":
        return f"{len(obj['data'])} keys: {', '.join(list(obj['data'])[:3])}..."
    if kind == "PersistentVolumeClaim":
        return f"{spec['resources']['requests']['storage']} {spec['accessModes'][0]}"
    if kind == "AnalysisTemplate":
        return ", ".join(f"{m['name']}: {m['successCondition'].split('&&')[-1].strip()}" for m in spec["metrics"])
    if kind == "Namespace":
        return f"pod security: {obj['metadata']['labels'].get('pod-security.kubernetes.io/enforce')}"
    return ""


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Leaf values by path; list items by their ``name`` when they have one, else by index."""
    if isinstance(value, dict):
        paths = [(f"{prefix}.{key}" if prefix else str(key), item) for key, item in value.items()]
    elif isinstance(value, list):
        keys = [str(v["name"]) if isinstance(v, dict) and "name" in v else str(i) for i, v in enumerate(value)]
        paths = [(f"{prefix}[{key}]", item) for key, item in zip(keys, value, strict=True)]
    else:
        return {prefix: value}
    return {k: v for path, item in paths for k, v in _flatten(item, path).items()}


def _without_hashes(objects: list[K8sObject]) -> list[K8sObject]:
    """The objects with generated ConfigMap names (``name-<hash>``) put back to ``name`` everywhere."""
    text = json.dumps(objects)
    for o in objects:
        if o["kind"] == "ConfigMap":
            full = o["metadata"]["name"]
            text = text.replace(f'"{full}"', f'"{full.rsplit("-", 1)[0]}"')
    return list(json.loads(text))


def differences(dev: list[K8sObject], prod: list[K8sObject]) -> list[tuple[str, str, Any, Any]]:
    """(object, field, dev value, prod value) for every setting the two overlays set differently.

    Generated names and the namespace and instance label (which differ by construction) are left out.
    """
    prod_by = {kind_name(o): o for o in _without_hashes(prod)}
    rows = []
    for o in _without_hashes(dev):
        other = prod_by.get(kind_name(o))
        if other is None:
            continue
        a, b = _flatten(o), _flatten(other)
        for field in sorted(set(a) | set(b)):
            if a.get(field) == b.get(field) or field.startswith(SKIP_DIFF) or "/instance" in field:
                continue
            short = field.replace("spec.template.spec.", "").replace("jobTemplate.spec.template.spec.", "")
            show = (lambda v: str(v).rsplit("/", 1)[-1]) if field.endswith(".image") else str
            rows.append((kind_name(o), short.removeprefix("spec."), show(a.get(field, "-")), show(b.get(field, "-"))))
    return rows


def run(n: Narrator, ctx: LabContext) -> None:
    """Render dev and prod, validate, police, break, compare and size."""
    from rich.markup import escape

    n.title("Kubernetes, validated offline: overlays, policy checks, a capacity plan", "C47 · C48 · C51")
    n.step("Render every overlay with `kubectl kustomize` (base + overlay, no cluster needed)")
    start = time.perf_counter()
    rendered = {env: render(env) for env in OVERLAYS}
    for env, objects in rendered.items():
        kinds = sorted({o["kind"] for o in objects})
        n.say(f"{env}: {len(objects)} objects, {len(kinds)} kinds ({', '.join(kinds)})")
    n.ok(f"rendered in {time.perf_counter() - start:.1f} s")
    n.why("what a cluster receives is the rendering, not the files: every check below reads it")

    n.step("What prod is made of: every object and its key settings")
    n.table(
        "k8s/overlays/prod",
        ["kind", "name", "key settings"],
        [[o["kind"], o["metadata"]["name"], escape(describe(o))] for o in rendered["prod"]],
    )

    n.step(f"Validate every object against its schema (kubernetes-validate, Kubernetes {K8S_VERSION}, strict)")
    for env, objects in rendered.items():
        problems = validate_schemas(objects)
        custom = sum(o["kind"] in ("Rollout", "AnalysisTemplate") for o in objects)
        if problems:
            for p in problems:
                n.bad(escape(str(p)))
        else:
            core = len(objects) - custom
            n.ok(f"{env}: {core} core objects valid, {custom} Argo Rollouts objects valid against k8s/schemas/")
    n.why("strict mode refuses unknown fields, so a misspelt key fails here instead of being ignored by the cluster")

    n.step("Run the policy checks (ops/k8s_checks.py) on both overlays")
    rows = [[name, *(len(check(rendered[env])) for env in OVERLAYS)] for name, check in CHECKS.items()]
    n.table("violations per check", ["check", *OVERLAYS], rows)
    if all(count == 0 for row in rows for count in row[1:]):
        n.ok("no violations: pinned images, probes and resources, non-root read-only pods, selectors that select")

    n.step("Break two things in a copy of prod: the checks must notice")
    broken = copy.deepcopy(rendered["prod"])
    api = find(broken, "Deployment", "mlops-lab-api")
    mlflow_svc = find(broken, "Service", "mlflow")
    assert api is not None
    assert mlflow_svc is not None
    container = api["spec"]["template"]["spec"]["containers"][0]
    container["image"] = container["image"].rsplit(":", 1)[0] + ":latest"
    mlflow_svc["spec"]["selector"] = {"app.kubernetes.io/name": "mlfow"}
    for violation in [*check_images(broken), *check_services(broken)]:
        n.bad(escape(f"caught: {violation}"))
    n.why("a `latest` tag means two pods of one release can run different code; a typo in a selector routes to nothing")

    n.step("dev vs prod: the same base, different sizes, hosts and releases")
    diff = differences(rendered["dev"], rendered["prod"])
    n.table(
        "settings that differ",
        ["object", "field", "dev", "prod"],
        [[o, escape(f), escape(a), escape(b)] for o, f, a, b in diff],
    )
    n.why("one base keeps environments alike: every setting not in this table is the same in dev and prod")

    n.step("Capacity: prod's replicas, CPU request and HPA bounds come from measured throughput")
    plan, row, _ = build_plan()
    measured = f"{row.label}, {row.rps:,.0f} req/s (p99 {row.p99_ms:g} ms)"
    n.say(f"measured: {measured} -> {plan.rps_per_core:,.0f} req/s per core")
    n.say(
        f"plan: {plan.replicas} pods x {plan.cpu_request_m}m CPU, HPA {plan.hpa_min}-{plan.hpa_max} at "
        f"{plan.target_utilization:.0%} CPU; {plan.rps_per_pod:,.0f} req/s per pod at the target"
    )
    n.say(
        f"cost: ${plan.cost_per_million_peak:.3f} per million predictions at the peak, "
        f"${plan.cost_per_million_average:.3f} at the average (the availability floor idles)"
    )
    mismatches = overlay_mismatches(plan, rendered["prod"])
    for m in mismatches:
        n.bad(escape(m))
    if not mismatches:
        n.ok("k8s/overlays/prod carries exactly this plan (replicas, CPU and memory, HPA bounds and target)")
    rollout = find(rendered["prod"], "Rollout", "mlops-lab-api")
    assert rollout is not None
    weights = [s["setWeight"] for s in rollout["spec"]["strategy"]["canary"]["steps"] if "setWeight" in s]
    n.table(
        "what a canary weight means without traffic routing (share of pods)",
        ["pods", *(f"setWeight {w}" for w in weights)],
        [[r, *(f"{s:.0%}" for s in canary_traffic_shares(r, weights))] for r in (plan.hpa_min, plan.hpa_max, 10)],
    )
    n.why("Argo Rollouts' basic canary counts pods: with 2 pods the first step already sends a third of the traffic")
    n.code(
        "k8s/", "ops/k8s_objects.py", "ops/k8s_checks.py", "ops/capacity.py (docs/capacity.md)", "docs/kubernetes.md"
    )
    n.say("on a real cluster: `kubectl apply -k k8s/overlays/dev` (secrets first: docs/kubernetes.md)")
