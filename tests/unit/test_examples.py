"""Every document in examples/*.yaml passes both the typed API and the CRD's openAPIV3Schema,
and the examples show what the docs say they show."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
from data.crd_schema import EXAMPLES_DIR, example_documents, open_api_schema, to_json_schema

from modelplane.api import ModelDeployment, ResidencyPolicy, parse_manifest
from modelplane.catalog import get_accelerator, precision_for, resolve_model

API_KINDS = ("ModelDeployment", "ResidencyPolicy")
OTHER_KINDS = ("Namespace",)  # shipped alongside to make an example complete; not ours to validate
DOCUMENTS = example_documents()


def _deployments() -> dict[str, ModelDeployment]:
    out = {}
    for _, doc in DOCUMENTS:
        if doc["kind"] == "ModelDeployment":
            obj = parse_manifest(doc)
            assert isinstance(obj, ModelDeployment)
            out[obj.metadata.name] = obj
    return out


def test_there_are_examples() -> None:
    kinds = [doc["kind"] for _, doc in DOCUMENTS]
    assert kinds.count("ModelDeployment") >= 7
    assert kinds.count("ResidencyPolicy") >= 1


@pytest.mark.parametrize(("where", "doc"), DOCUMENTS, ids=[where for where, _ in DOCUMENTS])
def test_example_validates_against_the_api_and_the_crd(where: str, doc: dict[str, Any]) -> None:
    kind = doc.get("kind")
    if kind in OTHER_KINDS:
        assert doc["apiVersion"] == "v1"
        return
    assert kind in API_KINDS, f"{where}: unexpected kind {kind!r}"
    parsed = parse_manifest(doc)
    assert type(parsed).__name__ == kind
    jsonschema.Draft7Validator(to_json_schema(open_api_schema(kind))).validate(doc)
    # What the operator would write back is what was read (nothing lost, nothing invented).
    assert parse_manifest(parsed.to_wire()) == parsed


@pytest.mark.parametrize("path", sorted(EXAMPLES_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_each_example_file_says_what_it_shows(path: Path) -> None:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# ")
    assert len(first) > 20


@pytest.mark.parametrize(("where", "doc"), DOCUMENTS, ids=[where for where, _ in DOCUMENTS])
def test_example_models_and_accelerators_are_in_the_catalog(where: str, doc: dict[str, Any]) -> None:
    if doc["kind"] != "ModelDeployment":
        return
    obj = parse_manifest(doc)
    assert isinstance(obj, ModelDeployment)
    model = resolve_model(obj.spec.model)  # a catalog entry, or the manifest's own architecture
    precision = precision_for(obj.spec.model, model)
    if obj.spec.model.precision is not None:
        assert precision == obj.spec.model.precision
    for name in obj.spec.resources.accelerators:
        assert get_accelerator(name) is not None, f"{where}: accelerator {name} is not in the catalog"


def test_examples_cover_the_shapes_of_the_issue() -> None:
    deps = _deployments()
    by_model = {d.spec.model.name: d for d in deps.values()}
    # a single-GPU chat SLM and a tiny edge SLM on small inference cards
    assert "meta-llama/Llama-3.1-8B-Instruct" in by_model
    edge = by_model["Qwen/Qwen2.5-0.5B-Instruct"]
    assert set(edge.spec.resources.accelerators) <= {"nvidia-t4", "nvidia-l4"}
    # a 70B sharded LLM
    assert "meta-llama/Llama-3.3-70B-Instruct" in by_model
    # the 405B in bf16 (multi-node on H100) and in fp8 (one H100 node)
    bf16 = by_model["meta-llama/Llama-3.1-405B-Instruct"]
    fp8 = by_model["meta-llama/Llama-3.1-405B-Instruct-FP8"]
    assert (bf16.spec.model.precision, fp8.spec.model.precision) == ("bf16", "fp8")
    assert bf16.spec.resources.accelerators == fp8.spec.resources.accelerators == ["nvidia-h100-80gb"]
    # a latency-autoscaled deployment on time to first token at p95
    scaled = [d for d in deps.values() if d.spec.autoscaling.enabled]
    assert any(
        d.spec.autoscaling.metric == "TimeToFirstToken" and d.spec.autoscaling.percentile == 95
        for d in scaled
    )
    # a model outside the catalog, described by its architecture
    assert any(d.spec.model.architecture is not None for d in deps.values())


def test_eu_residency_example_binds_its_namespace_to_the_policy() -> None:
    docs = [doc for where, doc in DOCUMENTS if where.startswith("eu-residency.yaml:")]
    (namespace,) = [d for d in docs if d["kind"] == "Namespace"]
    (policy_doc,) = [d for d in docs if d["kind"] == "ResidencyPolicy"]
    (deployment_doc,) = [d for d in docs if d["kind"] == "ModelDeployment"]
    policy = parse_manifest(policy_doc)
    deployment = parse_manifest(deployment_doc)
    assert isinstance(policy, ResidencyPolicy)
    assert isinstance(deployment, ModelDeployment)
    assert policy.metadata.name == "eu"
    assert namespace["metadata"]["name"] == "team-eu"
    assert namespace["metadata"]["labels"] == {"modelplane.dev/residency": "eu"}
    assert policy.spec.namespace_selector is not None
    assert policy.spec.namespace_selector.matches(namespace["metadata"]["labels"])
    assert not policy.spec.namespace_selector.matches({"modelplane.dev/residency": "us"})
    ((requirement,),) = [term.match_expressions for term in policy.spec.node_selector_terms]
    assert requirement.key == "topology.kubernetes.io/region"
    assert requirement.operator == "In"
    assert sorted(requirement.values) == ["eu-central-1", "eu-west-1"]
    assert deployment.metadata.namespace == "team-eu"
    assert deployment.spec.placement.residency == "eu"


def test_only_namespace_examples_set_a_namespace() -> None:
    """Examples apply to whatever namespace the user is in, unless the namespace is the point."""
    for where, doc in DOCUMENTS:
        namespace = doc["metadata"].get("namespace")
        if namespace is not None:
            assert where.startswith("eu-residency.yaml:"), where
            assert any(d["kind"] == "Namespace" and d["metadata"]["name"] == namespace for _, d in DOCUMENTS)


def test_example_names_are_unique() -> None:
    keys = [(doc["kind"], doc["metadata"].get("namespace"), doc["metadata"]["name"]) for _, doc in DOCUMENTS]
    assert len(keys) == len(set(keys))
