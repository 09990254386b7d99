"""The Helm chart on the local cluster: `helm install` works, the operator pod passes the
restricted Pod Security profile and runs (KWOK plays the kubelet), and the chart's
ServiceAccount can do exactly what the operator needs (access reviews as that ServiceAccount,
what `kubectl auth can-i` asks, with a token from hack/sa-kubeconfig).

The CRDs are installed once for the session by conftest, so every release here uses
`crds.enabled=false` and a release name of its own.
"""

from __future__ import annotations

import copy
import json
import secrets
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml
from e2e_helpers import REPO, Cluster, find_bin, require_loopback_kubeconfig, running_pods

from modelplane.config import OperatorConfig, load_config

CHART = REPO / "charts" / "modelplane"


class Need(NamedTuple):
    resource: str  # as kubectl names it: plural.group, subresource after a slash
    verbs: str
    namespaced: bool


# What the operator needs (tests/unit/test_chart.py checks the rendered RBAC equals this).
OPERATOR_NEEDS = (
    Need("customresourcedefinitions.apiextensions.k8s.io", "get list watch", namespaced=False),
    Need("events", "create patch", namespaced=True),
    Need("events.events.k8s.io", "create patch", namespaced=True),
    Need("namespaces", "get list watch", namespaced=False),
    Need("modeldeployments.modelplane.dev", "get list watch patch", namespaced=True),
    Need("modeldeployments.modelplane.dev/status", "get patch update", namespaced=True),
    Need("residencypolicies.modelplane.dev", "get list watch", namespaced=False),
    Need("nodes", "get list watch", namespaced=False),
    Need("pods", "get list watch", namespaced=True),
    Need("deployments.apps", "get list watch create patch update delete", namespaced=True),
    Need("services", "get list watch create patch update delete", namespaced=True),
    Need("leaderworkersets.leaderworkerset.x-k8s.io", "get list watch create patch update delete", True),
)

# What it must not be able to do.
FORBIDDEN = (
    ("delete", "nodes", None),
    ("patch", "nodes", None),
    ("get", "secrets", "default"),
    ("list", "secrets", "*"),
    ("create", "secrets", "default"),
    ("create", "pods", "default"),
    ("delete", "pods", "default"),
    ("create", "modeldeployments.modelplane.dev", "default"),
    ("delete", "modeldeployments.modelplane.dev", "default"),
    ("update", "residencypolicies.modelplane.dev", None),
    ("delete", "customresourcedefinitions.apiextensions.k8s.io", None),
    ("create", "clusterrolebindings.rbac.authorization.k8s.io", None),
    ("get", "configmaps", "kube-system"),
)


@dataclass(frozen=True)
class Release:
    name: str
    namespace: str
    fullname: str
    kubeconfig: Path  # authenticates as the chart's ServiceAccount


def helm(cluster: Cluster, *args: str, timeout: float = 180) -> str:
    proc = subprocess.run(
        [find_bin("helm"), f"--kubeconfig={cluster.kubeconfig}", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=cluster.env,
    )
    if proc.returncode != 0:
        pytest.fail(f"helm {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}", pytrace=False)
    return proc.stdout


def can_i(cluster: Cluster, kubeconfig: Path, verb: str, resource: str, namespace: str | None) -> bool:
    """May whoever the kubeconfig names do this? Asked with a SelfSubjectAccessReview (what
    `kubectl auth can-i` sends), spelled out so a resource whose CRD is not installed (e.g.
    LeaderWorkerSets) is asked about exactly. `resource` is plural.group[/subresource];
    namespace "*" means every namespace, None a cluster-scoped resource."""
    resource, _, subresource = resource.partition("/")
    plural, _, group = resource.partition(".")
    attributes = {"verb": verb, "group": group, "resource": plural}
    if subresource:
        attributes["subresource"] = subresource
    if namespace and namespace != "*":
        attributes["namespace"] = namespace
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": attributes},
    }
    proc = subprocess.run(
        [cluster.kubectl_path, f"--kubeconfig={kubeconfig}", "create", "-o", "json", "-f", "-"],
        input=json.dumps(review),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env=cluster.env,
    )
    assert proc.returncode == 0, f"SelfSubjectAccessReview {attributes}: {proc.stderr}"
    allowed: bool = json.loads(proc.stdout)["status"]["allowed"]
    return allowed


def make_namespace(cluster: Cluster, prefix: str, labels: dict[str, str] | None = None) -> str:
    name = f"e2e-{prefix}-{secrets.token_hex(3)}"
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "labels": {"modelplane.dev/e2e": "true", **(labels or {})}},
        }
    )
    return name


# The API server refuses any pod of the release that breaks the restricted profile.
RESTRICTED = {"pod-security.kubernetes.io/enforce": "restricted"}


def install(cluster: Cluster, namespace: str, *values: str) -> tuple[str, str]:
    """helm install a fresh release into `namespace`; returns (release, fullname)."""
    release = f"mp-{secrets.token_hex(3)}"
    args = ["install", release, str(CHART), "-n", namespace, "--set", "crds.enabled=false"]
    for value in values:
        args += ["--set", value]
    helm(cluster, *args, "--wait", "--timeout=120s")
    return release, f"{release}-modelplane"


def wait_for_operator_pod(cluster: Cluster, namespace: str, release: str) -> None:
    selector = f"app.kubernetes.io/instance={release},app.kubernetes.io/component=operator"
    cluster.wait_for(
        lambda: running_pods(cluster, namespace, selector, 1),
        timeout=90,
        describe=f"the operator pod of release {release} Running and Ready",
        show=[("deployment", f"{release}-modelplane", namespace)],
        namespace=namespace,
    )


def sa_kubeconfig_text(cluster: Cluster, namespace: str, serviceaccount: str) -> str:
    """hack/sa-kubeconfig's kubeconfig (conftest's sa_kubeconfig fixture is per test; the
    release here is per module)."""
    proc = subprocess.run(
        [str(REPO / "hack" / "sa-kubeconfig"), namespace, serviceaccount],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=cluster.env,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture(scope="module")
def release(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Release]:
    """The chart installed cluster-wide (the default) in a fresh restricted namespace."""
    namespace = make_namespace(cluster, "chart", RESTRICTED)
    name = ""
    try:
        name, fullname = install(cluster, namespace)
        wait_for_operator_pod(cluster, namespace, name)
        kubeconfig = tmp_path_factory.mktemp("chart") / "sa.kubeconfig"
        kubeconfig.write_text(sa_kubeconfig_text(cluster, namespace, fullname))
        kubeconfig.chmod(0o600)
        require_loopback_kubeconfig(kubeconfig)
        yield Release(name, namespace, fullname, kubeconfig)
    finally:
        if name:
            subprocess.run(
                [find_bin("helm"), f"--kubeconfig={cluster.kubeconfig}", "uninstall", name, "-n", namespace],
                capture_output=True,
                timeout=120,
                check=False,
                env=cluster.env,
            )
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", "--ignore-not-found")


@pytest.fixture(scope="module")
def other_namespace(cluster: Cluster) -> Iterator[str]:
    """A namespace no release watches specifically."""
    name = make_namespace(cluster, "chart-other")
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found")


def test_operator_pod_runs_under_the_restricted_profile(cluster: Cluster, release: Release) -> None:
    deployment = cluster.get("deployment", release.fullname, release.namespace)
    assert deployment is not None
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    namespace = cluster.get("namespace", release.namespace)
    assert namespace is not None
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    selector = f"app.kubernetes.io/instance={release.name},app.kubernetes.io/component=operator"
    [pod] = running_pods(cluster, release.namespace, selector, 1) or []
    assert pod["spec"]["serviceAccountName"] == release.fullname
    assert pod["spec"]["nodeName"]


def test_restricted_profile_is_enforced_on_the_charts_pod(cluster: Cluster, release: Release) -> None:
    """The namespace's enforce label is not decoration: the chart's pod template passes a
    server-side dry run there, and the same pod with privilege escalation allowed is refused."""
    deployment = cluster.get("deployment", release.fullname, release.namespace)
    assert deployment is not None
    template = deployment["spec"]["template"]

    def dry_run(spec: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "dry-run-"}, "spec": spec}
        return cluster.kubectl_result(
            "create", "--dry-run=server", "-n", release.namespace, "-f", "-", stdin=json.dumps(pod)
        )

    accepted = dry_run(template["spec"])
    assert accepted.returncode == 0, accepted.stderr
    loose = copy.deepcopy(template["spec"])
    loose["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    refused = dry_run(loose)
    assert refused.returncode != 0
    assert "violates PodSecurity" in refused.stderr


def test_installed_config_is_the_operators_default(cluster: Cluster, release: Release) -> None:
    configmap = cluster.get("configmap", f"{release.fullname}-config", release.namespace)
    assert configmap is not None
    assert load_config(yaml.safe_load(configmap["data"]["config.yaml"])) == OperatorConfig()


@pytest.mark.parametrize("need", OPERATOR_NEEDS, ids=lambda n: n.resource)
def test_serviceaccount_can_do_what_the_operator_needs(
    cluster: Cluster, release: Release, other_namespace: str, need: Need
) -> None:
    # cluster-wide: namespaced rights hold in every namespace, not only the release's
    where = ["*", other_namespace] if need.namespaced else [None]
    denied = [
        (verb, namespace)
        for verb in need.verbs.split()
        for namespace in where
        if not can_i(cluster, release.kubeconfig, verb, need.resource, namespace)
    ]
    assert denied == []


@pytest.mark.parametrize(("verb", "resource", "namespace"), FORBIDDEN)
def test_serviceaccount_cannot_do_more(
    cluster: Cluster, release: Release, verb: str, resource: str, namespace: str | None
) -> None:
    assert not can_i(cluster, release.kubeconfig, verb, resource, namespace)


def test_watch_namespaces_confine_the_operator(
    cluster: Cluster, other_namespace: str, sa_kubeconfig: Callable[[str, str], Path]
) -> None:
    home = make_namespace(cluster, "chart-home", RESTRICTED)
    watched = make_namespace(cluster, "chart-watched")
    try:
        name, fullname = install(cluster, home, f"watchNamespaces={{{watched}}}")
        wait_for_operator_pod(cluster, home, name)
        kubeconfig = sa_kubeconfig(home, fullname)
        assert can_i(cluster, kubeconfig, "create", "deployments.apps", watched)
        assert can_i(cluster, kubeconfig, "patch", "modeldeployments.modelplane.dev", watched)
        assert not can_i(cluster, kubeconfig, "create", "deployments.apps", other_namespace)
        assert not can_i(cluster, kubeconfig, "list", "pods", "*")
        assert can_i(cluster, kubeconfig, "watch", "nodes", None)  # cluster-scoped reads stay
        assert can_i(cluster, kubeconfig, "list", "residencypolicies.modelplane.dev", None)

        helm(cluster, "uninstall", name, "-n", home, "--wait", "--timeout=120s")
        leftovers = [
            (kind, ns)
            for kind, ns in (
                (f"deployment/{fullname}", home),
                (f"serviceaccount/{fullname}", home),
                (f"configmap/{fullname}-config", home),
                (f"role/{fullname}", watched),
                (f"rolebinding/{fullname}", watched),
                (f"clusterrole/{fullname}", None),
                (f"clusterrolebinding/{fullname}", None),
            )
            if cluster.kubectl("get", kind, "--ignore-not-found", *(["-n", ns] if ns else [])).strip()
        ]
        assert leftovers == []
    finally:
        for namespace in (home, watched):
            cluster.kubectl("delete", "namespace", namespace, "--wait=false", "--ignore-not-found")
