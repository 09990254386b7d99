"""Helpers the e2e modules share for ModelDeployments: build one, read its conditions, wait."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import pytest
import yaml
from e2e_helpers import REPO, Cluster
from operator_process import OperatorProcess

EXAMPLES = REPO / "examples"
READY_TIMEOUT = 90


def example(name: str) -> dict[str, Any]:
    """The ModelDeployment of examples/NAME."""
    docs = [d for d in yaml.safe_load_all((EXAMPLES / name).read_text()) if d]
    return next(d for d in docs if d["kind"] == "ModelDeployment")


def mdep(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "modelplane.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": spec,
    }


def condition(obj: Mapping[str, Any] | None, type_: str) -> dict[str, Any]:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond["type"] == type_:
            return dict(cond)
    return {}


def wait_ready(cluster: Cluster, name: str, ns: str, timeout: float = READY_TIMEOUT) -> dict[str, Any]:
    return cluster.wait_condition("mdep", name, ns, "Ready", "True", timeout=timeout)


def warning_events(cluster: Cluster, ns: str, reason: str) -> list[dict[str, Any]]:
    return [e for e in cluster.events(ns) if e.get("type") == "Warning" and e.get("reason") == reason]


def wait_quiet(op: OperatorProcess, namespace: str, seconds: float = 3.0, timeout: float = 60) -> float:
    """Wait until the operator has written nothing in `namespace` for `seconds`; its write count there."""
    deadline = time.monotonic() + timeout
    last, since = op.namespace_writes(namespace), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = op.namespace_writes(namespace)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= seconds:
            return now
    pytest.fail(f"the operator kept writing for {timeout}s:\n{op.log_tail()}", pytrace=False)
