"""Manifests that each break exactly one rule of the API, for both validating layers.

Each row is (id, manifest, field path in the pydantic error, substring of the API server's
message). The unit tests assert that `modelplane.api` refuses the manifest with exactly one
problem at that path; the e2e suite applies the same manifests to a real kube-apiserver with
the CRDs installed and expects the message (a CEL rule's message, or the schema's own words).

Only the standard library is imported, so the e2e suite can load this file by path.
"""

from __future__ import annotations

import copy
from typing import Any

Row = tuple[str, dict[str, Any], str, str]

VALID_MODEL_DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "modelplane.dev/v1alpha1",
    "kind": "ModelDeployment",
    "metadata": {"name": "invalid-case"},
    "spec": {
        "model": {
            "name": "meta-llama/Llama-3.1-8B-Instruct",
            "source": "hf://meta-llama/Llama-3.1-8B-Instruct",
        },
    },
}

VALID_RESIDENCY_POLICY: dict[str, Any] = {
    "apiVersion": "modelplane.dev/v1alpha1",
    "kind": "ResidencyPolicy",
    "metadata": {"name": "invalid-case"},
    "spec": {
        "nodeSelectorTerms": [
            {
                "matchExpressions": [
                    {"key": "topology.kubernetes.io/region", "operator": "In", "values": ["eu-west-1"]}
                ]
            }
        ],
    },
}

_DELETE = object()

# A small custom architecture (not in any catalog) that the architecture rows bend.
_ARCH = {"parameters": 1_000_000_000, "layers": 16, "hiddenSize": 2048, "attentionHeads": 32, "kvHeads": 8}


def with_changes(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of `base` with dotted paths set (or removed, with the value `_DELETE`)."""
    out = copy.deepcopy(base)
    for dotted, value in changes.items():
        *parents, leaf = dotted.split(".")
        node = out
        for key in parents:
            node = node.setdefault(key, {})
        if value is _DELETE:
            del node[leaf]
        else:
            node[leaf] = copy.deepcopy(value)
    return out


def _md(changes: dict[str, Any]) -> dict[str, Any]:
    return with_changes(VALID_MODEL_DEPLOYMENT, changes)


def _rp(changes: dict[str, Any]) -> dict[str, Any]:
    return with_changes(VALID_RESIDENCY_POLICY, changes)


def _affinity_requirement(requirement: dict[str, Any]) -> dict[str, Any]:
    return {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [requirement]}]
        }
    }


_AFFINITY_PATH = (
    "spec.placement.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]"
)

INVALID_MODEL_DEPLOYMENTS: list[Row] = [
    # --- CEL rules (x-kubernetes-validations), by their messages
    (
        "name-too-long",
        _md({"metadata.name": "a" * 41}),
        "metadata.name",
        "metadata.name must be at most 40 characters",
    ),
    (
        "name-with-dot",
        _md({"metadata.name": "llama.chat"}),
        "metadata.name",
        "metadata.name must be a DNS-1035 label",
    ),
    (
        "name-starts-with-digit",
        _md({"metadata.name": "8b-chat"}),
        "metadata.name",
        "metadata.name must be a DNS-1035 label",
    ),
    (
        "min-replicas-over-max",
        _md({"spec.autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 2}}),
        "spec.autoscaling.minReplicas",
        "minReplicas must not exceed maxReplicas",
    ),
    (
        "min-replicas-over-default-max",
        _md({"spec.autoscaling": {"minReplicas": 5}}),
        "spec.autoscaling.minReplicas",
        "minReplicas must not exceed maxReplicas",
    ),
    (
        "percentile-below-50",
        _md({"spec.autoscaling": {"percentile": 40}}),
        "spec.autoscaling.percentile",
        "percentile must be between 50 and 99",
    ),
    (
        "percentile-100",
        _md({"spec.autoscaling": {"percentile": 100}}),
        "spec.autoscaling.percentile",
        "percentile must be between 50 and 99",
    ),
    (
        "source-http",
        _md({"spec.model.source": "https://huggingface.co/meta-llama/Llama-3.1-8B-Instruct"}),
        "spec.model.source",
        "model.source must start with one of hf://, s3://, gs://, pvc://, oci://",
    ),
    (
        "source-without-path",
        _md({"spec.model.source": "s3://"}),
        "spec.model.source",
        "model.source must start with one of hf://, s3://, gs://, pvc://, oci://",
    ),
    (
        "source-with-space",
        _md({"spec.model.source": "pvc://models/llama 8b"}),
        "spec.model.source",
        "model.source must start with one of hf://, s3://, gs://, pvc://, oci://",
    ),
    (
        "tensor-times-pipeline-not-gpus",
        _md({"spec.resources": {"gpusPerReplica": 4, "tensorParallel": 4, "pipelineParallel": 2}}),
        "spec.resources.gpusPerReplica",
        "tensorParallel * pipelineParallel must equal gpusPerReplica",
    ),
    (
        "kv-heads-over-attention-heads",
        _md({"spec.model.architecture": {**_ARCH, "kvHeads": 64}}),
        "spec.model.architecture.kvHeads",
        "kvHeads cannot exceed attentionHeads",
    ),
    (
        "active-parameters-over-parameters",
        _md({"spec.model.architecture": {**_ARCH, "activeParameters": 2_000_000_000}}),
        "spec.model.architecture.activeParameters",
        "activeParameters cannot exceed parameters",
    ),
    (
        "mla-rank-without-rope-dim",
        _md({"spec.model.architecture": {**_ARCH, "kvLoraRank": 512}}),
        "spec.model.architecture.kvLoraRank",
        "kvLoraRank and qkRopeHeadDim go together (MLA)",
    ),
    (
        "affinity-in-without-values",
        _md({"spec.placement.nodeAffinity": _affinity_requirement({"key": "gpu", "operator": "In"})}),
        f"{_AFFINITY_PATH}.matchExpressions[0]",
        "operators In and NotIn need at least one value",
    ),
    (
        "affinity-exists-with-values",
        _md(
            {
                "spec.placement.nodeAffinity": _affinity_requirement(
                    {"key": "gpu", "operator": "Exists", "values": ["x"]}
                )
            }
        ),
        f"{_AFFINITY_PATH}.matchExpressions[0]",
        "operators Exists and DoesNotExist take no values",
    ),
    (
        "affinity-gt-not-integer",
        _md(
            {
                "spec.placement.nodeAffinity": _affinity_requirement(
                    {"key": "nvidia.com/gpu.count", "operator": "Gt", "values": ["--4"]}
                )
            }
        ),
        f"{_AFFINITY_PATH}.matchExpressions[0]",
        "operators Gt and Lt need exactly one integer value",
    ),
    # --- the schema's own checks: required, enums, bounds, patterns
    ("model-missing", _md({"spec.model": _DELETE}), "spec.model", "Required value"),
    ("model-name-missing", _md({"spec.model.name": _DELETE}), "spec.model.name", "Required value"),
    (
        "architecture-layers-missing",
        _md({"spec.model.architecture": {k: v for k, v in _ARCH.items() if k != "layers"}}),
        "spec.model.architecture.layers",
        "Required value",
    ),
    (
        "precision-unknown",
        _md({"spec.model.precision": "fp4"}),
        "spec.model.precision",
        'Unsupported value: "fp4"',
    ),
    ("engine-unknown", _md({"spec.engine": {"name": "tgi"}}), "spec.engine.name", 'Unsupported value: "tgi"'),
    (
        "optimize-for-unknown",
        _md({"spec.resources": {"optimizeFor": "Latency"}}),
        "spec.resources.optimizeFor",
        'Unsupported value: "Latency"',
    ),
    (
        "metric-unknown",
        _md({"spec.autoscaling": {"metric": "QueueLength"}}),
        "spec.autoscaling.metric",
        'Unsupported value: "QueueLength"',
    ),
    (
        "metric-source-unknown",
        _md({"spec.autoscaling": {"source": "Datadog"}}),
        "spec.autoscaling.source",
        'Unsupported value: "Datadog"',
    ),
    (
        "port-too-high",
        _md({"spec.serving": {"port": 70000}}),
        "spec.serving.port",
        "less than or equal to 65535",
    ),
    ("replicas-negative", _md({"spec.replicas": -1}), "spec.replicas", "greater than or equal to 0"),
    (
        "kv-cache-sequences-zero",
        _md({"spec.serving": {"kvCacheSequences": 0}}),
        "spec.serving.kvCacheSequences",
        "greater than or equal to 1",
    ),
    (
        "window-too-short",
        _md({"spec.autoscaling": {"windowSeconds": 5}}),
        "spec.autoscaling.windowSeconds",
        "greater than or equal to 10",
    ),
    (
        "max-replicas-zero",
        _md({"spec.autoscaling": {"minReplicas": 0, "maxReplicas": 0}}),
        "spec.autoscaling.maxReplicas",
        "greater than or equal to 1",
    ),
    (
        "tensor-parallel-too-large",
        _md({"spec.resources": {"tensorParallel": 128}}),
        "spec.resources.tensorParallel",
        "less than or equal to 64",
    ),
    (
        "residency-empty",
        _md({"spec.placement": {"residency": ""}}),
        "spec.placement.residency",
        "at least 1 char",
    ),
    (
        "toleration-effect-unknown",
        _md({"spec.placement": {"tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoRun"}]}}),
        "spec.placement.tolerations[0].effect",
        "NoSchedule|PreferNoSchedule|NoExecute",
    ),
    (
        "source-too-long",
        _md({"spec.model.source": "s3://" + "a" * 2044}),
        "spec.model.source",
        "may not be more than 2048",
    ),
]

INVALID_RESIDENCY_POLICIES: list[Row] = [
    (
        "terms-empty",
        _rp({"spec.nodeSelectorTerms": []}),
        "spec.nodeSelectorTerms",
        "at least 1 item",
    ),
    ("terms-missing", _rp({"spec.nodeSelectorTerms": _DELETE}), "spec.nodeSelectorTerms", "Required value"),
    (
        "term-in-without-values",
        _rp({"spec.nodeSelectorTerms": [{"matchExpressions": [{"key": "region", "operator": "NotIn"}]}]}),
        "spec.nodeSelectorTerms[0].matchExpressions[0]",
        "operators In and NotIn need at least one value",
    ),
    (
        "term-operator-unknown",
        _rp({"spec.nodeSelectorTerms": [{"matchExpressions": [{"key": "region", "operator": "Equals"}]}]}),
        "spec.nodeSelectorTerms[0].matchExpressions[0].operator",
        'Unsupported value: "Equals"',
    ),
    (
        "term-lt-two-values",
        _rp(
            {
                "spec.nodeSelectorTerms": [
                    {"matchFields": [{"key": "metadata.name", "operator": "Lt", "values": ["1", "2"]}]}
                ]
            }
        ),
        "spec.nodeSelectorTerms[0].matchFields[0]",
        "operators Gt and Lt need exactly one integer value",
    ),
    (
        "namespace-selector-exists-with-values",
        _rp(
            {
                "spec.namespaceSelector": {
                    "matchExpressions": [{"key": "team", "operator": "Exists", "values": ["a"]}]
                }
            }
        ),
        "spec.namespaceSelector.matchExpressions[0]",
        "operators Exists and DoesNotExist take no values",
    ),
    (
        "namespace-selector-in-without-values",
        _rp(
            {
                "spec.namespaceSelector": {
                    "matchExpressions": [{"key": "team", "operator": "In", "values": []}]
                }
            }
        ),
        "spec.namespaceSelector.matchExpressions[0]",
        "operators In and NotIn need at least one value",
    ),
    (
        "namespace-selector-gt",
        _rp(
            {
                "spec.namespaceSelector": {
                    "matchExpressions": [{"key": "team", "operator": "Gt", "values": ["1"]}]
                }
            }
        ),
        "spec.namespaceSelector.matchExpressions[0].operator",
        'Unsupported value: "Gt"',
    ),
    (
        "description-too-long",
        _rp({"spec.description": "x" * 1025}),
        "spec.description",
        "may not be more than 1024",
    ),
]
