"""The operator under test: `modelplane run` as a process on the host, against the local cluster.

It runs once per session, watching every namespace, with its metrics on a loopback port so the
tests can count what it wrote. Its log is printed when a test fails and kept in the run dir.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from e2e_helpers import REPO, Cluster, find_bin, require_loopback_kubeconfig

# The session's operator runs as the ServiceAccount of a real Helm release of our chart, so every
# e2e test also proves the chart's RBAC is enough (a missing verb shows up as a 403 and a failure).
RELEASE = NAMESPACE = "modelplane-e2e"

WRITE_VERBS = ("apply", "create", "patch", "update", "delete", "patch-status")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class OperatorProcess:
    proc: subprocess.Popen[bytes]
    metrics_url: str
    log_path: Path

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample of the operator's /metrics: (name, sorted labels) -> value."""
        with urllib.request.urlopen(self.metrics_url, timeout=5) as resp:
            text = resp.read().decode()
        samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            head, _, value = line.rpartition(" ")
            name, _, rest = head.partition("{")
            labels = tuple(
                sorted(
                    (k, v.strip('"'))
                    for k, _, v in (pair.partition("=") for pair in rest.rstrip("}").split(",") if pair)
                )
            )
            samples[(name, labels)] = float(value)
        return samples

    def writes(self) -> float:
        """Write requests the operator has sent to the API server so far (events included)."""
        return sum(
            v
            for (name, labels), v in self.metrics().items()
            if name == "modelplane_kube_requests_total" and dict(labels).get("verb") in WRITE_VERBS
        )

    def namespace_writes(self, namespace: str) -> float:
        """Write requests the operator has sent for objects in `namespace`."""
        return sum(
            v
            for (name, labels), v in self.metrics().items()
            if name == "modelplane_kube_namespace_writes_total" and dict(labels).get("namespace") == namespace
        )

    def reconciles(self) -> float:
        return sum(v for (name, _), v in self.metrics().items() if name == "modelplane_reconciles_total")

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no operator log)"


def start_operator(cluster: Cluster, kubeconfig: Path, log_path: Path) -> OperatorProcess:
    port, live = free_port(), free_port()
    exe = Path(sys.executable).with_name("modelplane")
    with log_path.open("ab") as log:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [
                str(exe),
                "run",
                "--kubeconfig",
                str(kubeconfig),
                "--metrics-port",
                str(port),
                "--liveness",
                f"http://127.0.0.1:{live}/healthz",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "KUBECONFIG": str(kubeconfig)},
            start_new_session=True,
        )
    op = OperatorProcess(proc, f"http://127.0.0.1:{port}/metrics", log_path)
    (cluster.run_dir / "pids").mkdir(exist_ok=True)
    (cluster.run_dir / "pids" / "e2e-operator.pid").write_text(str(proc.pid))
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            pytest.fail(f"the operator exited with {proc.returncode}:\n{op.log_tail()}", pytrace=False)
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{live}/healthz", timeout=2).close()
            return op
        except OSError:
            if time.monotonic() > deadline:
                stop_operator(op)
                pytest.fail(f"the operator did not become live in 60s:\n{op.log_tail()}", pytrace=False)
            time.sleep(0.5)


def stop_operator(op: OperatorProcess) -> None:
    if op.proc.poll() is None:
        op.proc.send_signal(signal.SIGTERM)
        try:
            op.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            op.proc.kill()
            op.proc.wait(timeout=10)


def install_chart(cluster: Cluster) -> Path:
    """helm upgrade --install the chart (CRDs are the session's); a kubeconfig for its ServiceAccount."""
    helm = [find_bin("helm"), f"--kubeconfig={cluster.kubeconfig}"]
    args = [
        "upgrade",
        "--install",
        RELEASE,
        str(REPO / "charts" / "modelplane"),
        "--namespace",
        NAMESPACE,
        "--create-namespace",
        "--set",
        "crds.enabled=false",
    ]
    proc = subprocess.run(
        [*helm, *args], capture_output=True, text=True, timeout=180, check=False, env=cluster.env
    )
    if proc.returncode != 0:
        pytest.fail(f"helm {' '.join(args)}:\n{proc.stderr}", pytrace=False)
    sa = cluster.run_dir / "e2e-operator.kubeconfig"
    token = subprocess.run(
        [str(REPO / "hack" / "sa-kubeconfig"), NAMESPACE, RELEASE],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=cluster.env,
    )
    if token.returncode != 0:
        pytest.fail(f"hack/sa-kubeconfig {NAMESPACE} {RELEASE}: {token.stderr}", pytrace=False)
    sa.write_text(token.stdout)
    sa.chmod(0o600)
    require_loopback_kubeconfig(sa)
    return sa


@pytest.fixture(scope="session")
def operator(cluster: Cluster) -> Iterator[OperatorProcess]:
    """`modelplane run` against the session's cluster, as the chart's ServiceAccount."""
    kubeconfig = install_chart(cluster)
    log_path = cluster.run_dir / "logs" / "e2e-operator.log"
    start = log_path.stat().st_size if log_path.exists() else 0
    op = start_operator(cluster, kubeconfig, log_path)
    try:
        yield op
    finally:
        stop_operator(op)
        (cluster.run_dir / "pids" / "e2e-operator.pid").unlink(missing_ok=True)
        with log_path.open(errors="replace") as log:
            log.seek(start)
            denied = [line for line in log if "system:serviceaccount:" in line and " cannot " in line]
        if denied:
            pytest.fail("the chart's RBAC refused the operator:\n" + "".join(denied[:10]), pytrace=False)
