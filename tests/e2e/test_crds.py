"""The real kube-apiserver enforces our CRDs: examples accepted, invalid manifests refused with the
CEL/schema message, printer columns, the scale subresource and schema defaults (issue 3's "must
show"). No operator runs here: status is patched by hand where a test needs one.
"""

from __future__ import annotations

import copy
import json
import secrets
from typing import Any

import pytest
import yaml
from data.invalid_manifests import (
    INVALID_MODEL_DEPLOYMENTS,
    INVALID_RESIDENCY_POLICIES,
    VALID_MODEL_DEPLOYMENT,
    VALID_RESIDENCY_POLICY,
)
from e2e_helpers import FIELD_MANAGER, REPO, Cluster
from mdep_helpers import mdep

from modelplane.api import parse_model_deployment

EXAMPLES = REPO / "examples"
GROUP_PATH = "/apis/modelplane.dev/v1alpha1"
# Dry runs persist nothing, so the refused manifests can all be tried in `default`.
DRY_RUN_NAMESPACE = "default"


def example_documents() -> list[tuple[str, dict[str, Any]]]:
    """Every document of every examples/*.yaml, as (file#index, document)."""
    docs: list[tuple[str, dict[str, Any]]] = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for index, doc in enumerate(d for d in yaml.safe_load_all(path.read_text()) if d):
            docs.append((f"{path.name}#{index}-{doc['kind']}", doc))
    return docs


EXAMPLE_DOCUMENTS = example_documents()


def server_apply(
    cluster: Cluster, obj: dict[str, Any], namespace: str | None = None, dry_run: bool = False
) -> tuple[int, str, str]:
    """Server-side apply one object; (exit code, stdout as JSON, stderr with the server's message)."""
    args = ["apply", "--server-side", f"--field-manager={FIELD_MANAGER}", "-o", "json", "-f", "-"]
    if dry_run:
        args.append("--dry-run=server")
    if namespace:
        args += ["-n", namespace]
    proc = cluster.kubectl_result(*args, stdin=json.dumps(obj))
    return proc.returncode, proc.stdout, proc.stderr


def patch_status(cluster: Cluster, name: str, namespace: str, status: dict[str, Any]) -> None:
    cluster.kubectl(
        "patch",
        "mdep",
        name,
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )


def test_the_examples_are_found() -> None:
    kinds = {doc["kind"] for _, doc in EXAMPLE_DOCUMENTS}
    assert kinds == {"ModelDeployment", "ResidencyPolicy", "Namespace"}


@pytest.mark.parametrize(("case", "doc"), EXAMPLE_DOCUMENTS, ids=[case for case, _ in EXAMPLE_DOCUMENTS])
def test_every_example_document_is_accepted_by_server_side_apply(
    cluster: Cluster, namespace: str, case: str, doc: dict[str, Any]
) -> None:
    obj = copy.deepcopy(doc)
    kind = obj["kind"]
    if kind == "ModelDeployment":
        # Stored for real, in this test's namespace (the examples' own namespaces may not exist).
        obj["metadata"]["namespace"] = namespace
        code, out, err = server_apply(cluster, obj, namespace)
        assert code == 0, f"{case} refused:\n{err}"
        stored = json.loads(out)
        assert stored["metadata"]["uid"]
        assert cluster.get("mdep", obj["metadata"]["name"], namespace) is not None
        # What the API server stored still reads as the same spec (the server only adds defaults).
        assert (
            parse_model_deployment(stored).spec.model_dump() == parse_model_deployment(doc).spec.model_dump()
        )
    else:
        # Cluster-scoped (ResidencyPolicy, Namespace): a server-side dry run goes through the schema,
        # CEL and admission without colliding with other tests' objects of the same name.
        code, out, err = server_apply(cluster, obj, dry_run=True)
        assert code == 0, f"{case} refused:\n{err}"
        assert json.loads(out)["metadata"]["name"] == obj["metadata"]["name"]


def test_a_residency_policy_example_is_stored_and_read_back(cluster: Cluster) -> None:
    policy = next(doc for _, doc in EXAMPLE_DOCUMENTS if doc["kind"] == "ResidencyPolicy")
    obj = copy.deepcopy(policy)
    name = f"e2e-crds-{secrets.token_hex(3)}"
    obj["metadata"] = {"name": name}
    try:
        code, _, err = server_apply(cluster, obj)
        assert code == 0, err
        stored = cluster.get("residencypolicy", name)
        assert stored is not None
        assert "namespace" not in stored["metadata"], "ResidencyPolicy is cluster-scoped"
        assert stored["spec"]["nodeSelectorTerms"] == policy["spec"]["nodeSelectorTerms"]
    finally:
        cluster.kubectl("delete", "residencypolicy", name, "--ignore-not-found")


@pytest.mark.parametrize(
    "obj", [VALID_MODEL_DEPLOYMENT, VALID_RESIDENCY_POLICY], ids=["model-deployment", "residency-policy"]
)
def test_the_base_of_the_invalid_table_is_valid(cluster: Cluster, obj: dict[str, Any]) -> None:
    """Each invalid row changes exactly one thing of this base, so the refusal is that change's."""
    namespace = DRY_RUN_NAMESPACE if obj["kind"] == "ModelDeployment" else None
    code, _, err = server_apply(cluster, obj, namespace, dry_run=True)
    assert code == 0, err


INVALID_ROWS = [(case, manifest, message) for case, manifest, _, message in INVALID_MODEL_DEPLOYMENTS] + [
    (case, manifest, message) for case, manifest, _, message in INVALID_RESIDENCY_POLICIES
]


@pytest.mark.parametrize(
    ("case", "manifest", "message"),
    INVALID_ROWS,
    ids=[f"{manifest['kind']}-{case}" for case, manifest, _ in INVALID_ROWS],
)
def test_an_invalid_manifest_is_refused_by_the_api_server_with_its_message(
    cluster: Cluster, case: str, manifest: dict[str, Any], message: str
) -> None:
    namespace = DRY_RUN_NAMESPACE if manifest["kind"] == "ModelDeployment" else None
    code, out, err = server_apply(cluster, manifest, namespace, dry_run=True)
    assert code != 0, f"{case} was accepted:\n{out}"
    assert "is invalid" in err, err
    assert message in err, f"{case}: expected {message!r} in the API server's message:\n{err}"


def test_kubectl_get_mdep_shows_the_printer_columns(cluster: Cluster, namespace: str) -> None:
    cluster.apply(mdep("columns", {"model": {"name": "meta-llama/Llama-3.1-8B-Instruct"}}), namespace)
    patch_status(
        cluster,
        "columns",
        namespace,
        {
            "phase": "Ready",
            "plan": {
                "class": "SLM",
                "accelerator": "nvidia-l4",
                "acceleratorSummary": "1x nvidia-l4",
                "gpusPerReplica": 1,
                "tensorParallel": 1,
                "pipelineParallel": 1,
                "nodesPerReplica": 1,
                "precision": "bf16",
                "maxContextLength": 8192,
                "weightsGiB": 15.0,
                "kvCacheTokens": 34000,
                "estTimePerOutputTokenMs": 52,
                "costPerReplicaHour": "0.80",
                "regions": ["eu-west-1", "us-east-1"],
            },
            "readySummary": "2/2",
            "latencySummary": "310ms",
            "regionsSummary": "eu-west-1,us-east-1",
        },
    )
    narrow = cluster.kubectl("get", "mdep", "columns", "-n", namespace).splitlines()
    assert narrow[0].split() == ["NAME", "MODEL", "CLASS", "ACCELERATOR", "READY", "P95", "PHASE", "AGE"]
    # "1x nvidia-l4" holds a space: split the row by the header's column offsets.
    row = columns(narrow)
    assert row["NAME"] == "columns"
    assert row["MODEL"] == "meta-llama/Llama-3.1-8B-Instruct"
    assert row["CLASS"] == "SLM"
    assert row["ACCELERATOR"] == "1x nvidia-l4"
    assert row["READY"] == "2/2"
    assert row["P95"] == "310ms"
    assert row["PHASE"] == "Ready"
    assert row["AGE"].endswith("s")
    wide = cluster.kubectl("get", "mdep", "columns", "-n", namespace, "-o", "wide").splitlines()
    assert wide[0].split()[-2:] == ["REGIONS", "COST/H"]
    row = columns(wide)
    assert row["REGIONS"] == "eu-west-1,us-east-1"
    assert row["COST/H"] == "0.80"


def test_the_columns_are_empty_before_the_operator_has_written_a_status(
    cluster: Cluster, namespace: str
) -> None:
    cluster.apply(mdep("fresh", {"model": {"name": "meta-llama/Llama-3.1-8B-Instruct"}}), namespace)
    row = columns(cluster.kubectl("get", "mdep", "fresh", "-n", namespace, "-o", "wide").splitlines())
    assert row["MODEL"] == "meta-llama/Llama-3.1-8B-Instruct"
    for column in ("CLASS", "ACCELERATOR", "READY", "P95", "PHASE", "REGIONS", "COST/H"):
        assert row[column] == "", (column, row)


def columns(lines: list[str]) -> dict[str, str]:
    """The first row of `kubectl get` output as {header: value}, cut at the header's offsets."""
    header, row = lines[0], lines[1]
    names = header.split()
    starts = []
    pos = 0
    for name in names:
        pos = header.index(name, pos)
        starts.append(pos)
        pos += len(name)
    ends = [*starts[1:], None]
    return {name: row[start:end].strip() for name, start, end in zip(names, starts, ends, strict=True)}


def test_kubectl_scale_writes_spec_replicas_through_the_scale_subresource(
    cluster: Cluster, namespace: str
) -> None:
    cluster.apply(mdep("scaled", {"model": {"name": "meta-llama/Llama-3.2-1B-Instruct"}}), namespace)
    selector = "modelplane.dev/deployment=scaled"
    patch_status(cluster, "scaled", namespace, {"replicas": 1, "selector": selector})
    before = cluster.get("mdep", "scaled", namespace)
    assert before is not None
    assert before["spec"]["replicas"] == 1

    cluster.kubectl("scale", "mdep", "scaled", "-n", namespace, "--replicas=3")

    after = cluster.get("mdep", "scaled", namespace)
    assert after is not None
    assert after["spec"]["replicas"] == 3
    assert after["metadata"]["generation"] == before["metadata"]["generation"] + 1
    # The scale subresource reads spec.replicas, status.replicas and the selector from status.
    scale = json.loads(
        cluster.kubectl("get", "--raw", f"{GROUP_PATH}/namespaces/{namespace}/modeldeployments/scaled/scale")
    )
    assert scale["kind"] == "Scale"
    assert scale["spec"]["replicas"] == 3
    assert scale["status"]["replicas"] == 1
    assert scale["status"]["selector"] == selector


def test_scale_below_zero_is_refused(cluster: Cluster, namespace: str) -> None:
    cluster.apply(mdep("unscalable", {"model": {"name": "meta-llama/Llama-3.2-1B-Instruct"}}), namespace)
    proc = cluster.kubectl_result("scale", "mdep", "unscalable", "-n", namespace, "--replicas=-1")
    assert proc.returncode != 0
    assert cluster.get("mdep", "unscalable", namespace)["spec"]["replicas"] == 1  # type: ignore[index]


def test_the_api_server_applies_the_schema_defaults(cluster: Cluster, namespace: str) -> None:
    minimal = mdep("defaults", {"model": {"name": "meta-llama/Llama-3.1-8B-Instruct"}})
    stored = cluster.apply(minimal, namespace)
    spec = stored["spec"]
    assert spec["engine"]["name"] == "vllm"
    assert spec["serving"]["port"] == 8000
    assert spec["serving"]["kvCacheSequences"] == 1
    assert spec["resources"]["optimizeFor"] == "Cost"
    assert spec["replicas"] == 1
    assert spec["autoscaling"] == {
        "enabled": False,
        "minReplicas": 1,
        "maxReplicas": 4,
        "metric": "TimeToFirstToken",
        "percentile": 95,
        "targetMilliseconds": 500,
        "windowSeconds": 60,
        "scaleDownStabilizationSeconds": 300,
        "source": "Prometheus",
    }
    # The operator's model defaults the same way: the minimal and the stored spec read alike.
    assert parse_model_deployment(stored).spec == parse_model_deployment(minimal).spec


def test_a_custom_architecture_gets_its_context_default(cluster: Cluster, namespace: str) -> None:
    arch = {
        "parameters": 1_000_000_000,
        "layers": 16,
        "hiddenSize": 2048,
        "attentionHeads": 32,
        "kvHeads": 8,
    }
    stored = cluster.apply(mdep("custom", {"model": {"name": "acme/tiny", "architecture": arch}}), namespace)
    assert stored["spec"]["model"]["architecture"]["maxContextLength"] == 8192


def test_status_is_a_subresource_spec_writes_do_not_change_it(cluster: Cluster, namespace: str) -> None:
    cluster.apply(mdep("split", {"model": {"name": "meta-llama/Llama-3.2-1B-Instruct"}}), namespace)
    patch_status(cluster, "split", namespace, {"phase": "Ready"})
    obj = mdep("split", {"model": {"name": "meta-llama/Llama-3.2-1B-Instruct"}})
    obj["status"] = {"phase": "Failed"}
    cluster.apply(obj, namespace)
    stored = cluster.get("mdep", "split", namespace)
    assert stored is not None
    assert stored["status"]["phase"] == "Ready", "a write to the main resource ignores status"
