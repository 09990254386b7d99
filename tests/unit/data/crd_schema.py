"""The CRDs in crds/ as data: their openAPIV3Schema, and that schema as plain JSON Schema.

The conversion keeps what JSON Schema understands of the OpenAPI v3 subset Kubernetes uses and
drops the `x-kubernetes-*` extensions. Objects with declared properties refuse unknown fields
(`additionalProperties: false`), as the API server does under strict field validation; objects
marked `x-kubernetes-preserve-unknown-fields` accept anything. CEL rules are not evaluated here:
tests/unit/data/invalid_manifests.py holds the manifests that break them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]
CRD_DIR = ROOT / "crds"
EXAMPLES_DIR = ROOT / "examples"
MODEL_DEPLOYMENTS_CRD = CRD_DIR / "modelplane.dev_modeldeployments.yaml"
RESIDENCY_POLICIES_CRD = CRD_DIR / "modelplane.dev_residencypolicies.yaml"
CRD_FILES = {"ModelDeployment": MODEL_DEPLOYMENTS_CRD, "ResidencyPolicy": RESIDENCY_POLICIES_CRD}

# The keys a node of a structural schema may carry here; anything else is a typo or a feature
# the tests do not understand (and the API server might not either).
SCHEMA_KEYS = frozenset(
    {
        "type",
        "description",
        "properties",
        "required",
        "items",
        "additionalProperties",
        "enum",
        "default",
        "format",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "pattern",
        "minItems",
        "maxItems",
        "x-kubernetes-validations",
        "x-kubernetes-preserve-unknown-fields",
        "x-kubernetes-list-type",
        "x-kubernetes-list-map-keys",
    }
)


def load_crd(kind: str) -> dict[str, Any]:
    crd: dict[str, Any] = yaml.safe_load(CRD_FILES[kind].read_text())
    return crd


def only_version(crd: dict[str, Any]) -> dict[str, Any]:
    (version,) = crd["spec"]["versions"]
    assert isinstance(version, dict)
    return version


def open_api_schema(kind: str) -> dict[str, Any]:
    schema: dict[str, Any] = only_version(load_crd(kind))["schema"]["openAPIV3Schema"]
    return schema


def to_json_schema(node: dict[str, Any]) -> dict[str, Any]:
    """One OpenAPI v3 schema node (and everything under it) as JSON Schema."""
    out: dict[str, Any] = {k: v for k, v in node.items() if not k.startswith("x-kubernetes-")}
    if "properties" in node:
        out["properties"] = {name: to_json_schema(sub) for name, sub in node["properties"].items()}
        if not node.get("x-kubernetes-preserve-unknown-fields"):
            out.setdefault("additionalProperties", False)
    if isinstance(node.get("additionalProperties"), dict):
        out["additionalProperties"] = to_json_schema(node["additionalProperties"])
    if "items" in node:
        out["items"] = to_json_schema(node["items"])
    return out


def walk(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node with its path, e.g. `spec.autoscaling.minReplicas`, `spec.env[]`."""
    yield path, node
    for name, sub in node.get("properties", {}).items():
        yield from walk(sub, f"{path}.{name}" if path else name)
    if "items" in node:
        yield from walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], f"{path}{{}}")


def example_documents() -> list[tuple[str, dict[str, Any]]]:
    """(file:index, document) for every YAML document in examples/*.yaml (not examples/cluster/)."""
    docs = []
    for path in sorted(EXAMPLES_DIR.glob("*.yaml")):
        for i, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if doc is not None:
                docs.append((f"{path.name}:{i}", doc))
    return docs
