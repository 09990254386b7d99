"""Fixtures for the e2e tests: the local control plane from hack/, CRDs, namespaces, LWS, Prometheus.

The session's cluster is the one in $MODELPLANE_RUN (default .cluster/) when it answers /readyz
(e.g. after `make cluster-up`); otherwise the session starts one with hack/up and stops it at the
end. MODELPLANE_CLUSTER_OWNED=1 says the caller (make test) started it and will stop it.
A kubeconfig that points anywhere but https://127.0.0.1 is refused before any request is made.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
from e2e_helpers import REPO, Cluster, find_bin, hack_env, require_loopback_kubeconfig, run_hack
from operator_process import operator  # noqa: F401  (the session-wide operator fixture)

E2E_DIR = Path(__file__).resolve().parent
CRDS_DIR = REPO / "crds"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test under tests/e2e is an e2e test: `-m "not e2e"` deselects them all."""
    for item in items:
        if E2E_DIR in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.e2e)


def _answers_readyz(kubectl: str, kubeconfig: Path) -> bool:
    try:
        proc = subprocess.run(
            [kubectl, f"--kubeconfig={kubeconfig}", "get", "--raw=/readyz", "--request-timeout=5s"],
            capture_output=True,
            text=True,
            timeout=15,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False
    return proc.returncode == 0 and proc.stdout.strip() == "ok"


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """The local control plane with the simulated fleet Ready and our CRDs installed."""
    run_dir = Path(os.environ.get("MODELPLANE_RUN", REPO / ".cluster")).resolve()
    kubeconfig = run_dir / "kubeconfig"
    env = hack_env(run_dir)
    kubectl = find_bin("kubectl")
    started = False
    if kubeconfig.exists():
        require_loopback_kubeconfig(kubeconfig)
    if not (kubeconfig.exists() and _answers_readyz(kubectl, kubeconfig)):
        run_hack("up", env=env)
        started = True
    require_loopback_kubeconfig(kubeconfig)
    env["KUBECONFIG"] = str(kubeconfig)
    local = Cluster(run_dir=run_dir, kubectl_path=kubectl, env=env)
    try:
        local.hack("nodes")
        crds = sorted(CRDS_DIR.glob("*.yaml"))
        if crds:
            files = [arg for crd in crds for arg in ("-f", str(crd))]
            local.kubectl(
                "apply", "--server-side", "--force-conflicts", "--field-manager=modelplane-e2e", *files
            )
            local.kubectl("wait", "--for=condition=Established", "--timeout=60s", *files)
        # Anything in this process that reads KUBECONFIG (e.g. the operator run in-process)
        # talks to this cluster and nothing else.
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("KUBECONFIG", str(kubeconfig))
            yield local
    finally:
        if started and os.environ.get("MODELPLANE_CLUSTER_OWNED") != "1":
            run_hack("down", env=hack_env(run_dir))


NamespaceFactory = Callable[..., str]


@pytest.fixture
def namespace_factory(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[NamespaceFactory]:
    """make(labels=None) -> a fresh namespace with a random name, deleted after the test
    (kept when MODELPLANE_E2E_KEEP_NAMESPACES=1, to look at after a failure)."""
    created: list[str] = []
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")

    def make(labels: Mapping[str, str] | None = None) -> str:
        name = f"e2e-{slug}-{secrets.token_hex(3)}"
        cluster.apply(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": name, "labels": {"modelplane.dev/e2e": "true", **(labels or {})}},
            }
        )
        created.append(name)
        # Pods are refused until the controller-manager has made the default ServiceAccount.
        cluster.wait_for(
            lambda: cluster.get("serviceaccount", "default", name),
            timeout=30,
            describe=f"the default ServiceAccount in {name}",
        )
        return name

    yield make
    if os.environ.get("MODELPLANE_E2E_KEEP_NAMESPACES") != "1":
        for name in created:
            cluster.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found")


@pytest.fixture
def namespace(namespace_factory: NamespaceFactory) -> str:
    """A fresh namespace for this test."""
    return namespace_factory()


@pytest.fixture
def lws(cluster: Cluster) -> Cluster:
    """The cluster with LeaderWorkerSet installed: CRDs, controller, webhooks (hack/lws-up)."""
    cluster.hack("lws-up")
    return cluster


@pytest.fixture
def no_lws(cluster: Cluster) -> Cluster:
    """The cluster without LeaderWorkerSet: no controller, no webhooks, no CRDs (hack/lws-down)."""
    cluster.hack("lws-down")
    return cluster


@pytest.fixture(scope="session")
def prometheus(cluster: Cluster) -> Iterator[str]:
    """Base URL of a Prometheus on 127.0.0.1 (hack/prometheus-up); stopped after the session
    when this session started it."""
    output = cluster.hack("prometheus-up")
    match = re.search(r"prometheus ready at (http://127\.0\.0\.1:\d+)", output)
    assert match, output
    yield match.group(1)
    if "started prometheus" in output:
        cluster.hack("prometheus-down")


@pytest.fixture
def sa_kubeconfig(cluster: Cluster, tmp_path: Path) -> Callable[[str, str], Path]:
    """write(ns, sa) -> path of a kubeconfig that authenticates as that ServiceAccount."""

    def write(ns: str, sa: str) -> Path:
        path = tmp_path / f"{ns}-{sa}.kubeconfig"
        proc = subprocess.run(
            [str(REPO / "hack" / "sa-kubeconfig"), ns, sa],
            env=cluster.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if proc.returncode != 0:
            pytest.fail(f"hack/sa-kubeconfig {ns} {sa}: {proc.stderr}", pytrace=False)
        path.write_text(proc.stdout)
        path.chmod(0o600)
        require_loopback_kubeconfig(path)
        return path

    return write
