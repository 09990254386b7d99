"""Talking to the local control plane from e2e tests: kubectl, apply, waits with useful failures.

Everything goes through the `kubectl` that hack/ resolves (the pinned minor) with an explicit
`--kubeconfig`, and `require_loopback_kubeconfig` refuses any kubeconfig that points anywhere but
https://127.0.0.1, so no test can reach a real cluster by accident.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
HACK = REPO / "hack"
FIELD_MANAGER = "modelplane-e2e"

T = TypeVar("T")


class NotLoopbackError(RuntimeError):
    """A kubeconfig names a server that is not https://127.0.0.1."""


def require_loopback_kubeconfig(path: Path) -> None:
    """Refuse a kubeconfig unless every cluster in it is served on https://127.0.0.1:<port>."""
    config = yaml.safe_load(path.read_text()) or {}
    clusters = config.get("clusters") or []
    if not clusters:
        raise NotLoopbackError(f"{path}: no clusters")
    for entry in clusters:
        server = str((entry.get("cluster") or {}).get("server", ""))
        url = urlsplit(server)
        if url.scheme != "https" or url.hostname != "127.0.0.1" or url.port is None:
            raise NotLoopbackError(
                f"{path}: cluster {entry.get('name')!r} has server {server!r}; "
                "e2e tests only talk to https://127.0.0.1:<port>"
            )


def hack_env(run_dir: Path, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for hack/ scripts: ours, pointed at one cluster's state directory."""
    env = dict(os.environ)
    env["MODELPLANE_RUN"] = str(run_dir)
    env.update(overrides or {})
    return env


def run_hack(script: str, *args: str, env: Mapping[str, str], timeout: float = 300) -> str:
    """Run hack/<script>; its log (stderr) and output come back together; fail with them."""
    proc = subprocess.run(
        [str(HACK / script), *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        pytest.fail(f"hack/{script} {' '.join(args)} exited {proc.returncode}:\n{output}", pytrace=False)
    return output


def find_bin(name: str) -> str:
    """The binary hack/lib.sh resolves (MODELPLANE_BIN_DIR, KUBEBUILDER_ASSETS, cache, PATH)."""
    proc = subprocess.run(
        ["bash", "-c", f'source "{HACK}/lib.sh" && find_bin "$1"', "find_bin", name],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        pytest.fail(f"{name} not found: run `make build` (hack/build)", pytrace=False)
    return proc.stdout.strip()


@dataclass(frozen=True)
class Cluster:
    """One local control plane: its state directory, kubeconfig and the kubectl to use."""

    run_dir: Path
    kubectl_path: str
    env: dict[str, str] = field(repr=False)

    @property
    def kubeconfig(self) -> Path:
        return self.run_dir / "kubeconfig"

    # --- kubectl ---------------------------------------------------------------------------
    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 60) -> str:
        """Run kubectl against this cluster and return its stdout; fail the test on error."""
        proc = self.kubectl_result(*args, stdin=stdin, timeout=timeout)
        if check and proc.returncode != 0:
            pytest.fail(f"kubectl {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}", pytrace=False)
        return proc.stdout

    def kubectl_result(
        self, *args: str, stdin: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl and return the whole result, for tests that expect it to fail."""
        return subprocess.run(
            [self.kubectl_path, f"--kubeconfig={self.kubeconfig}", *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=self.env,
        )

    def hack(self, script: str, *args: str, timeout: float = 300) -> str:
        """Run a hack/ script against this cluster (same state directory and ports)."""
        return run_hack(script, *args, env=self.env, timeout=timeout)

    # --- objects ---------------------------------------------------------------------------
    def apply(self, obj: Mapping[str, Any], namespace: str | None = None) -> dict[str, Any]:
        """Server-side apply one object (a dict as in YAML); returns it as stored."""
        args = ["apply", "--server-side", f"--field-manager={FIELD_MANAGER}", "-o", "json", "-f", "-"]
        if namespace:
            args += ["-n", namespace]
        out: dict[str, Any] = json.loads(self.kubectl(*args, stdin=json.dumps(obj)))
        return out

    def apply_result(
        self, obj: Mapping[str, Any], namespace: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Server-side apply that may be refused: the result, with the API server's message in stderr."""
        args = ["apply", "--server-side", f"--field-manager={FIELD_MANAGER}", "-f", "-"]
        if namespace:
            args += ["-n", namespace]
        return self.kubectl_result(*args, stdin=json.dumps(obj))

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        args = ["get", kind, name, "-o", "json", "--ignore-not-found"]
        if namespace:
            args += ["-n", namespace]
        out = self.kubectl(*args).strip()
        return json.loads(out) if out else None

    def items(
        self, kind: str, namespace: str | None = None, selector: str | None = None
    ) -> list[dict[str, Any]]:
        args = ["get", kind, "-o", "json"]
        args += ["-n", namespace] if namespace else ["--all-namespaces"]
        if selector:
            args += ["-l", selector]
        items: list[dict[str, Any]] = json.loads(self.kubectl(*args))["items"]
        return items

    def events(self, namespace: str) -> list[dict[str, Any]]:
        """The namespace's events, oldest first."""
        events = self.items("events", namespace)
        return sorted(events, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")

    # --- waiting ---------------------------------------------------------------------------
    def wait_for(
        self,
        predicate: Callable[[], T | None],
        timeout: float = 60,
        describe: str = "condition",
        show: Sequence[tuple[str, str, str | None]] = (),
        namespace: str | None = None,
        interval: float = 0.25,
    ) -> T:
        """Poll `predicate` until it returns something truthy and return that.

        On timeout the test fails with `describe`, the predicate's last error, the YAML of every
        (kind, name, namespace) in `show`, and the recent events of `namespace` (or of the
        namespaces in `show`)."""
        deadline = time.monotonic() + timeout
        last_error = ""
        while True:
            try:
                value = predicate()
                if value:
                    return value
                last_error = f"last value: {value!r}"
            except Exception as exc:  # a not-yet-existing object is a normal state while waiting
                last_error = f"last error: {type(exc).__name__}: {exc}"
            if time.monotonic() > deadline:
                pytest.fail(
                    self.explain(
                        f"timed out after {timeout}s waiting for {describe}", last_error, show, namespace
                    ),
                    pytrace=False,
                )
            time.sleep(interval)

    def wait_condition(
        self,
        kind: str,
        name: str,
        namespace: str | None,
        type: str,
        status: str = "True",
        timeout: float = 60,
    ) -> dict[str, Any]:
        """Wait until the object's status.conditions has `type` with `status`; returns the object."""

        def met() -> dict[str, Any] | None:
            obj = self.get(kind, name, namespace)
            if obj is None:
                return None
            for cond in obj.get("status", {}).get("conditions", []) or []:
                if cond.get("type") == type and cond.get("status") == status:
                    return obj
            return None

        return self.wait_for(
            met,
            timeout=timeout,
            describe=f"{kind}/{name} condition {type}={status}",
            show=[(kind, name, namespace)],
        )

    def explain(
        self,
        headline: str,
        detail: str = "",
        show: Sequence[tuple[str, str, str | None]] = (),
        namespace: str | None = None,
    ) -> str:
        """A failure message: what we waited for, the objects' YAML and the recent events."""
        parts = [headline]
        if detail:
            parts.append(detail)
        namespaces = [namespace] if namespace else []
        for kind, name, ns in show:
            args = ["get", kind, name, "-o", "yaml"] + (["-n", ns] if ns else [])
            proc = self.kubectl_result(*args)
            parts.append(
                f"--- {kind}/{name}" + (f" in {ns}" if ns else "") + ":\n" + (proc.stdout or proc.stderr)
            )
            if ns and ns not in namespaces:
                namespaces.append(ns)
        for ns in namespaces:
            proc = self.kubectl_result("get", "events", "-n", ns, "--sort-by=.lastTimestamp")
            lines = (proc.stdout or proc.stderr).splitlines()
            recent = lines if len(lines) <= 26 else lines[:1] + lines[-25:]
            parts.append(f"--- recent events in {ns}:\n" + "\n".join(recent))
        return "\n".join(parts)


def pods_of(cluster: Cluster, namespace: str, selector: str) -> list[dict[str, Any]]:
    return cluster.items("pods", namespace, selector)


def running_pods(cluster: Cluster, namespace: str, selector: str, count: int) -> list[dict[str, Any]] | None:
    """`count` pods matching `selector`, all Running and Ready, or None."""
    pods = pods_of(cluster, namespace, selector)
    ready = [
        p
        for p in pods
        if p.get("status", {}).get("phase") == "Running"
        and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
    ]
    return ready if len(ready) == count and len(pods) == count else None
