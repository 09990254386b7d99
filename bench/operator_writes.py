"""The operator on the local cluster: time from apply to Ready, and the writes it makes when
nothing asks for one.

Starts (or reuses) the local control plane in $MODELPLANE_RUN with hack/up and hack/nodes, installs
the CRDs, runs `modelplane run` as a process with its metrics on a loopback port, applies N small
ModelDeployments in a fresh namespace in one go, and records when each one's Ready condition turns
True (polled every 0.2 s). Then it counts the operator's API requests from its own
`modelplane_kube_requests_total` (by verb and kind) over three windows: the rollout, an idle window
in which nothing changes, and a burst of no-op touches (a label and an annotation on every
ModelDeployment, which cause watch events but ask for nothing). The idle and touch windows should
show no write at all.

Only 127.0.0.1 is contacted: the kubeconfig is refused unless its server is https://127.0.0.1.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from prometheus_client.parser import text_string_to_metric_families

from .common import REPO, heading, machine, percentile, table

WRITE_VERBS = frozenset({"apply", "create", "patch", "update", "delete", "patch-status"})
# Single-GPU deployments spread over the example fleet's accelerator types by its free GPUs
# (13 L4, 16 A100-80GB, 32 H100-80GB), so every replica finds a node.
ACCELERATOR_CYCLE = ("nvidia-l4", "nvidia-a100-80gb", "nvidia-h100-80gb")
MODEL = "Qwen/Qwen2.5-0.5B-Instruct"
POLL_SECONDS = 0.2


@dataclass
class Cluster:
    run_dir: Path
    kubectl_path: str
    env: dict[str, str]

    @property
    def kubeconfig(self) -> Path:
        return self.run_dir / "kubeconfig"

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        proc = subprocess.run(
            [self.kubectl_path, f"--kubeconfig={self.kubeconfig}", *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env=self.env,
        )
        if check and proc.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {proc.stderr.strip()}")
        return proc.stdout

    def hack(self, script: str) -> None:
        subprocess.run([str(REPO / "hack" / script)], env=self.env, check=True, timeout=600)


def _find_bin(name: str) -> str:
    out = subprocess.run(
        ["bash", "-c", f'source "{REPO}/hack/lib.sh" && find_bin "$1"', "find_bin", name],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not out:
        raise RuntimeError(f"{name} not found: run `make build`")
    return out


def _require_loopback(kubeconfig: Path) -> None:
    config = yaml.safe_load(kubeconfig.read_text()) or {}
    for entry in config.get("clusters") or [{}]:
        url = urlsplit(str((entry.get("cluster") or {}).get("server", "")))
        if url.scheme != "https" or url.hostname != "127.0.0.1":
            raise RuntimeError(f"{kubeconfig}: server {url.geturl()!r} is not https://127.0.0.1; refusing")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _answers(cluster: Cluster) -> bool:
    if not cluster.kubeconfig.exists():
        return False
    _require_loopback(cluster.kubeconfig)
    try:
        return cluster.kubectl("get", "--raw=/readyz", "--request-timeout=5s", check=False).strip() == "ok"
    except subprocess.TimeoutExpired:
        return False


# ------------------------------------------------------------------------------- the operator


@dataclass
class Operator:
    proc: subprocess.Popen[bytes]
    metrics_url: str
    log_path: Path

    def requests(self) -> Counter[tuple[str, str]]:
        """modelplane_kube_requests_total so far, by (verb, kind)."""
        with urllib.request.urlopen(self.metrics_url, timeout=5) as resp:
            text = resp.read().decode()
        out: Counter[tuple[str, str]] = Counter()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "modelplane_kube_requests_total":
                    out[(sample.labels["verb"], sample.labels["kind"])] += int(sample.value)
        return out

    def reconciles(self) -> int:
        return int(self._sum("modelplane_reconciles_total"))

    def reconcile_seconds(self) -> float:
        """Total time spent in reconciles so far (API calls included)."""
        return self._sum("modelplane_reconcile_duration_seconds_sum")

    def _sum(self, name: str) -> float:
        with urllib.request.urlopen(self.metrics_url, timeout=5) as resp:
            text = resp.read().decode()
        return sum(
            s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == name
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def start_operator(cluster: Cluster) -> Operator:
    port, live = _free_port(), _free_port()
    log_path = cluster.run_dir / "logs" / "bench-operator.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    exe = Path(sys.executable).with_name("modelplane")
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [
                str(exe),
                "run",
                "--kubeconfig",
                str(cluster.kubeconfig),
                "--metrics-port",
                str(port),
                "--liveness",
                f"http://127.0.0.1:{live}/healthz",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**cluster.env, "KUBECONFIG": str(cluster.kubeconfig)},
            start_new_session=True,
        )
    op = Operator(proc, f"http://127.0.0.1:{port}/metrics", log_path)
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the operator exited with {proc.returncode}; see {log_path}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{live}/healthz", timeout=2).close()
            return op
        except OSError:
            if time.monotonic() > deadline:
                op.stop()
                raise RuntimeError(f"the operator did not become live in 60 s; see {log_path}") from None
            time.sleep(0.5)


# ------------------------------------------------------------------------------- the workload


def small_deployment(name: str, accelerator: str) -> dict[str, Any]:
    return {
        "apiVersion": "modelplane.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {
            "model": {"name": MODEL, "precision": "bf16"},
            "serving": {"maxContextLength": 4096},
            "resources": {"accelerators": [accelerator]},
        },
    }


def _ready_names(cluster: Cluster, namespace: str) -> set[str]:
    items = json.loads(cluster.kubectl("get", "mdep", "-n", namespace, "-o", "json"))["items"]
    return {
        item["metadata"]["name"]
        for item in items
        if any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in (item.get("status") or {}).get("conditions") or []
        )
    }


def _wait_quiet(op: Operator, seconds: float = 5.0, timeout: float = 120) -> None:
    """Until the operator has sent no request and run no reconcile for `seconds`."""
    deadline = time.monotonic() + timeout
    last, since = (op.requests(), op.reconciles()), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = (op.requests(), op.reconciles())
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= seconds:
            return
    raise RuntimeError(f"the operator did not go quiet within {timeout} s; see {op.log_path}")


def _delta(after: Counter[tuple[str, str]], before: Counter[tuple[str, str]]) -> Counter[tuple[str, str]]:
    out: Counter[tuple[str, str]] = Counter()
    for key, value in after.items():
        if value - before.get(key, 0):
            out[key] = value - before.get(key, 0)
    return out


def _requests_table(windows: Sequence[tuple[str, Counter[tuple[str, str]], int]]) -> str:
    rows: list[list[object]] = []
    for window, requests, reconciles in windows:
        writes = sum(v for (verb, _), v in requests.items() if verb in WRITE_VERBS)
        # Watches are kopf's streams and are not counted here: "reads" are the client's own GETs/LISTs.
        reads = sum(v for (verb, _), v in requests.items() if verb not in WRITE_VERBS)
        detail = ", ".join(f"{verb} {kind} {n}" for (verb, kind), n in sorted(requests.items())) or "-"
        rows.append([window, reconciles, writes, reads, detail])
    return table(
        ["window", "reconciles", "writes", "reads", "requests by verb and kind"], rows, align="lrrrl"
    )


def run(count: int = 20, idle_seconds: float = 30.0, touch_rounds: int = 2) -> None:
    run_dir = Path(os.environ.get("MODELPLANE_RUN", REPO / ".cluster")).resolve()
    env = {**os.environ, "MODELPLANE_RUN": str(run_dir)}
    cluster = Cluster(run_dir, _find_bin("kubectl"), env)
    print(heading(f"operator: {count} ModelDeployments on the local cluster (writes by the operator)"))
    print(machine())
    started = not _answers(cluster)
    if started:
        cluster.hack("up")
    _require_loopback(cluster.kubeconfig)
    op: Operator | None = None
    namespace = f"bench-{secrets.token_hex(3)}"
    try:
        cluster.hack("nodes")
        crds = [arg for crd in sorted((REPO / "crds").glob("*.yaml")) for arg in ("-f", str(crd))]
        cluster.kubectl(
            "apply", "--server-side", "--force-conflicts", "--field-manager=modelplane-bench", *crds
        )
        cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", *crds)
        op = start_operator(cluster)
        cluster.kubectl("create", "namespace", namespace)
        deadline = time.monotonic() + 30
        while not cluster.kubectl("get", "serviceaccount", "default", "-n", namespace, "--ignore-not-found"):
            if time.monotonic() > deadline:
                raise RuntimeError(f"no default ServiceAccount in {namespace}")
            time.sleep(0.2)
        _wait_quiet(op, seconds=3)

        # 1. apply -> Ready
        names = [f"m{i:03d}" for i in range(count)]
        manifest = {
            "apiVersion": "v1",
            "kind": "List",
            "items": [
                small_deployment(n, ACCELERATOR_CYCLE[i % len(ACCELERATOR_CYCLE)])
                for i, n in enumerate(names)
            ],
        }
        before, reconciles_before = op.requests(), op.reconciles()
        t0 = time.monotonic()
        cluster.kubectl(
            "apply",
            "--server-side",
            "--field-manager=modelplane-bench",
            "-n",
            namespace,
            "-f",
            "-",
            stdin=json.dumps(manifest),
        )
        applied = time.monotonic() - t0
        ready_at: dict[str, float] = {}
        deadline = t0 + 300
        while len(ready_at) < count:
            if time.monotonic() > deadline:
                missing = sorted(set(names) - set(ready_at))
                raise RuntimeError(f"not Ready after 300 s: {missing}; see {op.log_path}")
            now = time.monotonic() - t0
            for name in _ready_names(cluster, namespace) - set(ready_at):
                ready_at[name] = now
            time.sleep(POLL_SECONDS)
        _wait_quiet(op)
        rollout = (_delta(op.requests(), before), op.reconciles() - reconciles_before)
        times = sorted(ready_at.values())
        print(
            f"\napply -> Ready for {count} ModelDeployments ({MODEL}, 1 GPU each, "
            f"accelerators {'/'.join(ACCELERATOR_CYCLE)}), applied in one request ({applied:.2f} s), "
            f"Ready polled every {POLL_SECONDS} s:"
        )
        print(
            table(
                ["deployments", "p50 s", "p95 s", "max s", "first s"],
                [
                    [
                        count,
                        f"{percentile(times, 50):.2f}",
                        f"{percentile(times, 95):.2f}",
                        f"{times[-1]:.2f}",
                        f"{times[0]:.2f}",
                    ]
                ],
            )
        )

        # 2. idle: nothing changes
        before, reconciles_before = op.requests(), op.reconciles()
        time.sleep(idle_seconds)
        idle = (_delta(op.requests(), before), op.reconciles() - reconciles_before)

        # 3. a burst of no-op touches: labels and annotations on every ModelDeployment
        before, reconciles_before, seconds_before = op.requests(), op.reconciles(), op.reconcile_seconds()
        t0 = time.monotonic()
        for round_ in range(touch_rounds):
            cluster.kubectl("label", "mdep", "--all", "-n", namespace, f"bench-touch={round_}", "--overwrite")
            cluster.kubectl(
                "annotate", "mdep", "--all", "-n", namespace, f"bench-note=round-{round_}", "--overwrite"
            )
        touched = time.monotonic() - t0
        _wait_quiet(op)
        touches = (_delta(op.requests(), before), op.reconciles() - reconciles_before)
        touch_seconds = op.reconcile_seconds() - seconds_before

        print(f"\nthe operator's requests (modelplane_kube_requests_total deltas; {count} ModelDeployments):")
        print(
            _requests_table(
                [
                    ("rollout (apply -> all Ready -> quiet)", *rollout),
                    (f"idle {idle_seconds:.0f} s", *idle),
                    (f"{touch_rounds * 2 * count} no-op touches ({touched:.1f} s)", *touches),
                ]
            )
        )
        if touches[1]:
            print(
                f"a no-op reconcile took {1000 * touch_seconds / touches[1]:.1f} ms on average "
                "(modelplane_reconcile_duration_seconds over the touch window)"
            )
        print(f"operator log: {op.log_path}")
    finally:
        if op is not None:
            op.stop()
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", "--ignore-not-found", check=False)
        if started:
            cluster.hack("down")
