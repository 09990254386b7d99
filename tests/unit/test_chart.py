"""The Helm chart (charts/modelplane), rendered with the real `helm template`.

No cluster: helm renders offline. helm comes from hack/build (`make build`); a missing helm
fails these tests rather than skipping them.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import jsonschema
import pytest
import yaml

from modelplane.config import DEFAULT_IMAGES, OperatorConfig, load_config
from modelplane.runner import add_run_parser

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "modelplane"
RELEASE, NAMESPACE = "mp", "modelplane-system"
FULLNAME = "mp-modelplane"
KEEP = "helm.sh/resource-policy"


class Need(NamedTuple):
    """One permission the operator needs: an API group, a resource, its verbs."""

    group: str
    resource: str
    verbs: str
    namespaced: bool


# Everything the operator does, and nothing more (the RBAC must equal this table).
OPERATOR_NEEDS = (
    # framework (kopf): resource scanning, LeaderWorkerSet detection
    Need("apiextensions.k8s.io", "customresourcedefinitions", "get list watch", namespaced=False),
    # framework: events about handlers, and the operator's own events
    Need("", "events", "create patch", namespaced=True),
    Need("events.k8s.io", "events", "create patch", namespaced=True),
    # framework + residency binding by namespace labels
    Need("", "namespaces", "get list watch", namespaced=False),
    # application
    Need("modelplane.dev", "modeldeployments", "get list watch patch", namespaced=True),
    Need("modelplane.dev", "modeldeployments/status", "get patch update", namespaced=True),
    Need("modelplane.dev", "residencypolicies", "get list watch", namespaced=False),
    Need("", "nodes", "get list watch", namespaced=False),
    Need("", "pods", "get list watch", namespaced=True),
    Need("apps", "deployments", "get list watch create patch update delete", namespaced=True),
    Need("", "services", "get list watch create patch update delete", namespaced=True),
    Need("leaderworkerset.x-k8s.io", "leaderworkersets", "get list watch create patch update delete", True),
)

Grant = tuple[str, str, str]


def needs_as_grants(needs: Iterable[Need]) -> set[Grant]:
    return {(n.group, n.resource, verb) for n in needs for verb in n.verbs.split()}


# --- helm ------------------------------------------------------------------------------------


@functools.cache
def helm_path() -> str:
    proc = subprocess.run(
        ["bash", "-c", "source hack/lib.sh && find_bin helm"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    path = proc.stdout.strip()
    if proc.returncode != 0 or not path:
        pytest.fail("helm is missing: run `make build` (hack/build builds it into ~/.cache/modelplane)")
    return path


def helm_template(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [helm_path(), "template", RELEASE, str(CHART), "--namespace", NAMESPACE, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@functools.cache
def _render(args: tuple[str, ...]) -> tuple[dict[str, Any], ...]:
    proc = helm_template(*args)
    assert proc.returncode == 0, f"helm template {' '.join(args)} failed:\n{proc.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(proc.stdout) if doc)


def render(*args: str) -> list[dict[str, Any]]:
    """The chart's objects for these helm flags (e.g. "--set", "crds.enabled=false")."""
    return list(_render(tuple(args)))


def only(objects: Iterable[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def of_kind(objects: Iterable[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def operator_container(objects: Iterable[dict[str, Any]]) -> dict[str, Any]:
    containers = only(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["operator"]
    container: dict[str, Any] = containers[0]
    return container


def run_args(container: Mapping[str, Any]) -> argparse.Namespace:
    """The container's arguments parsed by `modelplane run`'s own parser."""
    parser = argparse.ArgumentParser(prog="modelplane")
    add_run_parser(parser.add_subparsers(dest="command"))
    args = list(container["args"])
    assert args[0] == "run"
    return parser.parse_args(args)


def config_of(objects: Iterable[dict[str, Any]]) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(
        only(objects, "ConfigMap", f"{FULLNAME}-config")["data"]["config.yaml"]
    )
    return data


# --- the operator Deployment -----------------------------------------------------------------


def test_one_operator_replica_replaced_by_recreate() -> None:
    deployment = only(render(), "Deployment")
    assert deployment["metadata"] == {**deployment["metadata"], "name": FULLNAME, "namespace": NAMESPACE}
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    selector = deployment["spec"]["selector"]["matchLabels"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items()
    assert selector["app.kubernetes.io/instance"] == RELEASE


def test_probes_use_kopf_liveness_endpoint_and_metrics_port_is_named() -> None:
    container = operator_container(render())
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"healthz": 8080, "metrics": 9090}
    for probe in ("livenessProbe", "readinessProbe"):
        get = container[probe]["httpGet"]
        assert get["path"] == "/healthz"
        assert ports[get["port"]] == 8080, probe
    args = run_args(container)
    assert args.liveness == "http://0.0.0.0:8080/healthz"
    assert (args.metrics_port, args.metrics_address) == (9090, "0.0.0.0")
    assert args.config == "/etc/modelplane/config.yaml"
    assert args.namespace == []  # every namespace by default


def test_ports_follow_values_and_must_differ() -> None:
    container = operator_container(render("--set", "probes.port=8181", "--set", "metrics.port=9191"))
    args = run_args(container)
    assert args.liveness == "http://0.0.0.0:8181/healthz"
    assert args.metrics_port == 9191
    proc = helm_template("--set", "probes.port=9090")
    assert proc.returncode != 0
    assert "must differ" in proc.stderr


def test_restricted_security_context_with_writable_tmp_only() -> None:
    objects = render()
    pod = only(objects, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = operator_container(objects)
    sc = container["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["readOnlyRootFilesystem"] is True
    assert "privileged" not in sc
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert volumes[mounts["/etc/modelplane"]]["configMap"]["name"] == f"{FULLNAME}-config"
    assert container["resources"]["requests"]
    assert container["resources"]["limits"]["memory"]


def test_dockerfile_runs_modelplane_as_the_charts_user() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    instructions = [line.split(None, 1) for line in dockerfile.splitlines() if line and line[0] not in "# "]
    froms = [rest.split()[0] for op, rest in instructions if op == "FROM"]
    assert froms
    assert all(image == "python:3.11-slim" for image in froms)
    assert any(op == "RUN" and re.search(r"\bpip install \.$", rest) for op, rest in instructions)
    users = [rest for op, rest in instructions if op == "USER"]
    uid = only(render(), "Deployment")["spec"]["template"]["spec"]["securityContext"]["runAsUser"]
    assert users == [f"{uid}:{uid}"]
    entrypoints = [json.loads(rest) for op, rest in instructions if op == "ENTRYPOINT"]
    assert entrypoints == [["modelplane"]]
    ignored = (REPO / ".dockerignore").read_text().splitlines()
    # only what `pip install .` needs goes into the build context
    assert "*" in ignored
    assert "!operator/" in ignored


def test_scheduling_image_and_extra_values_reach_the_pod() -> None:
    objects = render(
        "--set", "image.tag=1.2.3",
        "--set", "imagePullSecrets[0].name=regcred",
        "--set", "nodeSelector.pool=system",
        "--set", "tolerations[0].key=dedicated",
        "--set", "tolerations[0].operator=Exists",
        "--set", "priorityClassName=system-cluster-critical",
        "--set", "extraArgs[0]=--verbose",
        "--set", "podLabels.team=platform",
    )  # fmt: skip
    pod = only(objects, "Deployment")["spec"]["template"]["spec"]
    container = operator_container(objects)
    assert container["image"] == "ghcr.io/modelplane/modelplane:1.2.3"
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert pod["nodeSelector"] == {"pool": "system"}
    assert pod["tolerations"] == [{"key": "dedicated", "operator": "Exists"}]
    assert pod["priorityClassName"] == "system-cluster-critical"
    assert run_args(container).verbose is True
    assert only(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]["team"] == "platform"


def test_image_tag_defaults_to_app_version() -> None:
    app_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    assert operator_container(render())["image"] == f"ghcr.io/modelplane/modelplane:{app_version}"


def test_watch_namespaces_become_namespace_flags() -> None:
    container = operator_container(render("--set", "watchNamespaces={team-a,team-b}"))
    assert run_args(container).namespace == ["team-a", "team-b"]


def test_chart_metadata() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert (chart["name"], chart["version"], chart["appVersion"]) == ("modelplane", "0.1.0", "0.1.0")
    assert chart["kubeVersion"] == ">=1.30.0-0"
    too_old = helm_template("--kube-version", "1.29.0")
    assert too_old.returncode != 0
    assert "kubeVersion" in too_old.stderr or "incompatible" in too_old.stderr


def test_helm_lint_is_clean() -> None:
    proc = subprocess.run(
        [helm_path(), "lint", "--strict", str(CHART)], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --- configuration ---------------------------------------------------------------------------


def test_default_config_is_the_operators_default() -> None:
    config = load_config(config_of(render()))
    assert config == OperatorConfig()
    assert {name: engine.image for name, engine in config.engines.items()} == DEFAULT_IMAGES


def test_config_values_reach_the_operator() -> None:
    objects = render(
        "--set-json", "config.gpuMemoryUtilization=0.85",
        "--set-json", "config.minKvCacheShare=0.2",
        "--set-json", "config.runtimeReserveGib=2.5",
        "--set-string", "config.prices.nvidia-l4=0.80",
        "--set", "config.prices.nvidia-h100-80gb=2.5",
        "--set", "config.defaultResidencyPolicy=eu",
        "--set", "config.modelCache.persistentVolumeClaim=weights",
        "--set", "config.modelCache.sizeLimit=500Gi",
        "--set", "config.engines.vllm.image=registry.example/vllm:v1",
        "--set", "config.engines.vllm.pullPolicy=Always",
        "--set", "config.gpuTolerationKey=gpu",
    )  # fmt: skip
    config = load_config(config_of(objects))
    assert config.gpu_memory_utilization == 0.85
    assert config.min_kv_cache_share == 0.2
    assert config.runtime_reserve_gib == 2.5
    assert config.prices == {"nvidia-l4": "0.80", "nvidia-h100-80gb": "2.5"}
    assert config.default_residency_policy == "eu"
    assert config.model_cache.persistent_volume_claim == "weights"
    assert config.model_cache.size_limit == "500Gi"
    assert config.image_for("vllm").image == "registry.example/vllm:v1"
    assert config.image_for("vllm").pull_policy == "Always"
    assert config.image_for("sglang").image == DEFAULT_IMAGES["sglang"]
    assert config.gpu_toleration_key == "gpu"


def test_a_config_change_rolls_the_pod() -> None:
    def checksum(*args: str) -> str:
        value: str = only(render(*args), "Deployment")["spec"]["template"]["metadata"]["annotations"][
            "checksum/config"
        ]
        return value

    assert re.fullmatch(r"[0-9a-f]{64}", checksum())
    assert checksum() == checksum("--set", "resources.limits.memory=1Gi")
    assert checksum() != checksum("--set-json", "config.gpuMemoryUtilization=0.8")
    assert checksum() != checksum("--set-string", "config.prices.nvidia-l4=0.5")


# --- values, schema and documentation --------------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "assignment"),
    [
        ("--set", "config.gpuMemoryUtilization=2"),
        ("--set-json", "config.gpuMemoryUtilization=0.1"),
        ("--set", "config.gpuMemoryUtilization=0.5"),  # --set makes a string of a fraction
        ("--set", "config.minKvCacheShare=1"),
        ("--set", "config.runtimeReserveGib=-1"),
        ("--set-string", "config.prices.nvidia-l4=cheap"),
        ("--set", "config.prices.nvidia-l4=-1"),
        ("--set", "config.engines.tgi.image=example/tgi:1"),
        ("--set", "config.engines.vllm.pullPolicy=Sometimes"),
        ("--set", "config.modelCache.sizeLimit=lots"),
        ("--set", "config.defaultResidencyPolicy=Not_A_Name"),
        ("--set", "image.pullPolicy=Sometimes"),
        ("--set", "watchNamespaces={Team_A}"),
        ("--set", "probes.port=0"),
        ("--set", "metrics.port=70000"),
        ("--set", "metrics.serviceMonitor.interval=soon"),
        ("--set", "podSecurityContext.seccompProfile.type=Unconfined"),
        ("--set", "securityContext.privileged=true"),
        ("--set", "crds.enabled=maybe"),
        ("--set", "replicaCount=2"),  # unknown values are refused, not ignored
    ],
)
def test_schema_rejects_bad_values(flag: str, assignment: str) -> None:
    proc = helm_template(flag, assignment)
    assert proc.returncode != 0, f"{assignment} was accepted"
    assert "schema" in proc.stderr, proc.stderr


def test_schema_accepts_good_values() -> None:
    objects = render(
        "--set-json", "config.gpuMemoryUtilization=0.99",
        "--set", "config.minKvCacheShare=0",
        "--set-string", "config.prices.amd-mi300x=3",
        "--set", "watchNamespaces={team-a}",
    )  # fmt: skip
    assert load_config(config_of(objects)).gpu_memory_utilization == 0.99


def values_keys() -> list[tuple[str, str | None, Any]]:
    """(dotted path, first line of the comment block right above the key, default) of every
    key in values.yaml."""
    text = (CHART / "values.yaml").read_text()
    defaults = yaml.safe_load(text)
    out: list[tuple[str, str | None, Any]] = []
    stack: list[tuple[int, str]] = []
    comments: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            comments.append(stripped)
            continue
        match = re.match(r"^( *)([A-Za-z0-9_.-]+):", line)
        if not match:
            comments = []
            continue
        indent, key = len(match[1]), match[2]
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = [k for _, k in stack] + [key]
        value = functools.reduce(lambda d, k: d[k], path, defaults)
        out.append((".".join(path), comments[0] if comments else None, value))
        stack.append((indent, key))
        comments = []
    return out


def test_every_value_is_documented_by_a_comment_starting_with_its_name() -> None:
    keys = values_keys()
    assert len(keys) > 50
    undocumented = [
        path
        for path, comment, _ in keys
        if comment is None or not re.match(rf"# {re.escape(path.rsplit('.', 1)[-1])}\b", comment)
    ]
    assert undocumented == []


def test_schema_is_draft_07_and_covers_every_value() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(schema)
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    jsonschema.Draft7Validator(schema).validate(defaults)
    uncovered = []
    for path, _, _ in values_keys():
        node = schema
        for key in path.split("."):
            node = node.get("properties", {}).get(key)
            if node is None:
                uncovered.append(path)
                break
        else:
            if "type" not in node and "oneOf" not in node:
                uncovered.append(path)
    assert uncovered == []


def test_install_doc_lists_every_value() -> None:
    doc = (REPO / "docs" / "install.md").read_text()
    leaves = [path for path, _, value in values_keys() if not (isinstance(value, dict) and value)]
    missing = [path for path in leaves if f"`{path}`" not in doc]
    assert missing == []


# --- RBAC ------------------------------------------------------------------------------------


def rules_of(role: Mapping[str, Any]) -> set[Grant]:
    return {
        (group, resource, verb)
        for rule in role.get("rules", [])
        for group in rule.get("apiGroups", [])
        for resource in rule.get("resources", [])
        for verb in rule["verbs"]
    }


def bound_to_operator(binding: Mapping[str, Any], serviceaccount: str = FULLNAME) -> bool:
    return {"kind": "ServiceAccount", "name": serviceaccount, "namespace": NAMESPACE} in binding["subjects"]


def cluster_grants(objects: list[dict[str, Any]], serviceaccount: str = FULLNAME) -> set[Grant]:
    roles = {r["metadata"]["name"]: r for r in of_kind(objects, "ClusterRole")}
    grants: set[Grant] = set()
    for binding in of_kind(objects, "ClusterRoleBinding"):
        if bound_to_operator(binding, serviceaccount):
            assert binding["roleRef"]["kind"] == "ClusterRole"
            grants |= rules_of(roles[binding["roleRef"]["name"]])
    return grants


def namespace_grants(objects: list[dict[str, Any]], namespace: str) -> set[Grant]:
    roles = {
        r["metadata"]["name"]: r for r in of_kind(objects, "Role") if r["metadata"]["namespace"] == namespace
    }
    grants: set[Grant] = set()
    for binding in of_kind(objects, "RoleBinding"):
        if binding["metadata"]["namespace"] == namespace and bound_to_operator(binding):
            assert binding["roleRef"]["kind"] == "Role"
            grants |= rules_of(roles[binding["roleRef"]["name"]])
    return grants


@pytest.mark.parametrize("args", [(), ("--set", "watchNamespaces={team-a,team-b}")])
def test_no_wildcards_in_rbac(args: tuple[str, ...]) -> None:
    roles = [o for o in render(*args) if o["kind"] in ("ClusterRole", "Role")]
    assert roles
    for role in roles:
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
                assert not any("*" in item for item in rule.get(field, [])), (role["metadata"], rule)


def test_cluster_wide_rbac_is_exactly_what_the_operator_needs() -> None:
    objects = render()
    assert cluster_grants(objects) == needs_as_grants(OPERATOR_NEEDS)
    assert of_kind(objects, "Role") == of_kind(objects, "RoleBinding") == []
    assert only(objects, "ServiceAccount")["metadata"] == {
        **only(objects, "ServiceAccount")["metadata"],
        "name": FULLNAME,
        "namespace": NAMESPACE,
    }
    assert only(objects, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == FULLNAME


def test_rbac_is_grouped_and_commented_as_framework_and_application() -> None:
    text = (CHART / "templates" / "rbac.yaml").read_text()
    assert text.count("# --- Framework (kopf) ---") == 2
    assert text.count("# --- Application (Modelplane) ---") == 2
    rules = re.findall(r"^- apiGroups:", text, flags=re.MULTILINE)
    commented = re.findall(r"^# .*\n- apiGroups:", text, flags=re.MULTILINE)
    # every rule, or the group of rules it belongs to, says why it is there
    assert len(commented) >= len(rules) - 3


def test_watch_namespaces_turn_namespaced_rules_into_roles() -> None:
    objects = render("--set", "watchNamespaces={team-a,team-b}")
    cluster_scoped = needs_as_grants(n for n in OPERATOR_NEEDS if not n.namespaced)
    namespaced = needs_as_grants(n for n in OPERATOR_NEEDS if n.namespaced)
    assert cluster_grants(objects) == cluster_scoped
    for namespace in ("team-a", "team-b"):
        assert namespace_grants(objects, namespace) == namespaced
    assert {r["metadata"]["namespace"] for r in of_kind(objects, "Role")} == {"team-a", "team-b"}
    assert namespace_grants(objects, NAMESPACE) == set()


def test_without_rbac_and_with_an_existing_serviceaccount() -> None:
    objects = render(
        "--set", "rbac.create=false",
        "--set", "serviceAccount.create=false",
        "--set", "serviceAccount.name=ops",
    )  # fmt: skip
    kinds = {o["kind"] for o in objects}
    assert kinds.isdisjoint({"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"})
    assert only(objects, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "ops"
    named = render("--set", "serviceAccount.name=ops")
    assert cluster_grants(named, serviceaccount="ops") == needs_as_grants(OPERATOR_NEEDS)


# --- metrics ---------------------------------------------------------------------------------


def test_metrics_service_selects_the_operator_pod() -> None:
    objects = render()
    service = only(objects, "Service", f"{FULLNAME}-metrics")
    pod_labels = only(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"}
    ]


def test_service_monitor_only_when_enabled_and_served() -> None:
    api = "monitoring.coreos.com/v1/ServiceMonitor"
    assert of_kind(render("--api-versions", api), "ServiceMonitor") == []
    enabled = ("--set", "metrics.serviceMonitor.enabled=true")
    assert of_kind(render(*enabled), "ServiceMonitor") == []
    objects = render(*enabled, "--api-versions", api, "--set", "metrics.serviceMonitor.labels.release=prom")
    monitor = only(objects, "ServiceMonitor")
    service = only(objects, "Service", f"{FULLNAME}-metrics")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    assert monitor["metadata"]["labels"]["release"] == "prom"


# --- CRDs ------------------------------------------------------------------------------------


def test_chart_crd_copies_are_byte_identical_to_crds() -> None:
    sources = {p.name: p.read_bytes() for p in (REPO / "crds").glob("*.yaml")}
    copies = {p.name: p.read_bytes() for p in (CHART / "files" / "crds").glob("*.yaml")}
    assert sources, "no CRDs in crds/"
    drifted = sorted(name for name in sources.keys() | copies.keys() if sources.get(name) != copies.get(name))
    assert drifted == [], "the chart's CRDs differ from crds/: run hack/sync-chart-crds"


def test_sync_script_check_agrees() -> None:
    proc = subprocess.run(
        [str(REPO / "hack" / "sync-chart-crds"), "--check"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr


def test_rendered_crds_are_the_sources_with_the_keep_policy() -> None:
    sources = {}
    for path in (REPO / "crds").glob("*.yaml"):
        crd = yaml.safe_load(path.read_text())
        sources[crd["metadata"]["name"]] = crd
    rendered = {o["metadata"]["name"]: o for o in of_kind(render(), "CustomResourceDefinition")}
    assert rendered.keys() == sources.keys()
    for name, crd in rendered.items():
        meta = dict(crd["metadata"])
        assert meta.pop("annotations") == {**sources[name]["metadata"].get("annotations", {}), KEEP: "keep"}
        labels = meta.pop("labels")
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert {**crd, "metadata": meta} == sources[name]


def test_crds_can_be_left_out_or_not_kept() -> None:
    assert of_kind(render("--set", "crds.enabled=false"), "CustomResourceDefinition") == []
    for crd in of_kind(render("--set", "crds.keep=false"), "CustomResourceDefinition"):
        assert KEEP not in crd["metadata"].get("annotations", {})


def test_namespaced_objects_live_in_the_release_namespace() -> None:
    for obj in render():
        if obj["kind"] in ("ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"):
            assert "namespace" not in obj["metadata"]
        else:
            assert obj["metadata"]["namespace"] == NAMESPACE, obj["kind"]
        assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
