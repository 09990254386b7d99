"""The CRDs in crds/ and the typed API in modelplane.api describe the same objects.

Walks both at once and fails on any drift: field names, required fields, types, enums, bounds,
patterns and defaults. Also checks what the API server will insist on (a structural schema,
defaults that validate, CEL rules that guard optional fields and stay within the cost budget),
the subresources and printer columns, and ties the invalid-manifest table to the schema.
"""

from __future__ import annotations

import re
import types
from enum import Enum
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import jsonschema
import pytest
from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen
from data.crd_schema import (
    SCHEMA_KEYS,
    load_crd,
    only_version,
    open_api_schema,
    to_json_schema,
    walk,
)
from data.invalid_manifests import INVALID_MODEL_DEPLOYMENTS, INVALID_RESIDENCY_POLICIES, Row
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from modelplane.api import ModelDeployment, ResidencyPolicy, SpecError, parse_manifest

MODELS: dict[str, type[BaseModel]] = {"ModelDeployment": ModelDeployment, "ResidencyPolicy": ResidencyPolicy}
ROOT_FIELDS_NOT_COMPARED = {"apiVersion", "kind", "metadata"}  # the API server owns these


# ------------------------------------------------------------------------- pydantic ↔ CRD walk


def _unwrap(annotation: Any) -> tuple[Any, list[Any]]:
    """The type under Optional/Annotated, and the constraint metadata collected on the way."""
    metadata: list[Any] = []
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation, *extra = get_args(annotation)
            for item in extra:
                metadata.extend(item.metadata if isinstance(item, FieldInfo) else [item])
        elif origin in (Union, types.UnionType):
            options = [a for a in get_args(annotation) if a is not type(None)]
            assert len(options) == 1, f"unions other than Optional are not representable: {annotation}"
            annotation = options[0]
        else:
            return annotation, metadata


def _bounds(metadata: list[Any], kind: str) -> dict[str, Any]:
    """Pydantic constraints in the CRD's words, for a node of JSON type `kind`."""
    out: dict[str, Any] = {}
    for m in metadata:
        if isinstance(m, Ge):
            out["minimum"] = m.ge
        elif isinstance(m, Gt):
            assert kind == "integer", "exclusive bounds are only mapped for integers"
            out["minimum"] = m.gt + 1
        elif isinstance(m, Le):
            out["maximum"] = m.le
        elif isinstance(m, Lt):
            assert kind == "integer", "exclusive bounds are only mapped for integers"
            out["maximum"] = m.lt - 1
        elif isinstance(m, MinLen):
            out["minItems" if kind == "array" else "minLength"] = m.min_length
        elif isinstance(m, MaxLen):
            out["maxItems" if kind == "array" else "maxLength"] = m.max_length
        elif getattr(m, "pattern", None) is not None:
            out["pattern"] = m.pattern
    return out


BOUND_KEYS = ("minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems", "pattern")


def _crd_bounds(node: dict[str, Any]) -> dict[str, Any]:
    return {k: node[k] for k in BOUND_KEYS if k in node}


def _wire_default(field: FieldInfo) -> tuple[bool, Any]:
    """(has a default the CRD must repeat, that default as it appears on the wire)."""
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
        if isinstance(value, BaseModel):
            return True, {}  # the CRD defaults the object so that the API server fills in its fields
        assert value in ([], {}), f"unexpected default factory result {value!r}"
        return False, None  # empty lists and maps are left out on the wire
    if field.default is PydanticUndefined or field.default is None:
        return False, None
    value = field.default
    return True, value.value if isinstance(value, Enum) else value


def _same_value(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def compare(annotation: Any, node: dict[str, Any], path: str, problems: list[str]) -> None:
    """Append to `problems` every way the CRD node at `path` differs from the annotation."""
    inner, metadata = _unwrap(annotation)
    origin = get_origin(inner)

    def expect(condition: bool, what: str) -> None:
        if not condition:
            problems.append(f"{path or '<root>'}: {what}")

    kind = node.get("type")
    if isinstance(inner, type) and issubclass(inner, BaseModel):
        expect(kind == "object", f"type {kind!r}, pydantic has the model {inner.__name__}")
        compare_model(inner, node, path, problems)
    elif isinstance(inner, type) and issubclass(inner, Enum):
        expect(kind == "string", f"type {kind!r}, pydantic has the enum {inner.__name__}")
        expect(node.get("enum") == [m.value for m in inner], f"enum {node.get('enum')} != {inner.__name__}")
    elif origin is Literal:
        expect(kind == "string", f"type {kind!r}, pydantic has a Literal")
        expect(node.get("enum") == list(get_args(inner)), f"enum {node.get('enum')} != {get_args(inner)}")
    elif origin is list:
        expect(kind == "array", f"type {kind!r}, pydantic has a list")
        (item,) = get_args(inner)
        compare(item, node.get("items", {}), f"{path}[]", problems)
    elif origin is dict:
        expect(kind == "object", f"type {kind!r}, pydantic has a dict")
        _, value = get_args(inner)
        expect("properties" not in node, "a map must not declare properties")
        if value is str:
            expect(
                node.get("additionalProperties") == {"type": "string"},
                "a map of strings needs additionalProperties",
            )
        else:
            expect(
                node.get("x-kubernetes-preserve-unknown-fields") is True,
                "a free-form map must preserve fields",
            )
    else:
        scalar = {str: "string", int: "integer", float: "number", bool: "boolean"}.get(inner)
        expect(scalar is not None, f"unmapped pydantic type {inner!r}")
        expect(kind == scalar, f"type {kind!r}, pydantic has {getattr(inner, '__name__', inner)}")
        expect("enum" not in node, "the CRD has an enum that pydantic lacks")
    bounds = _bounds(metadata, kind or "")
    expect(_crd_bounds(node) == bounds, f"bounds {_crd_bounds(node)} != pydantic {bounds}")


def compare_model(model: type[BaseModel], node: dict[str, Any], path: str, problems: list[str]) -> None:
    fields = {(f.alias or name): f for name, f in model.model_fields.items()}
    props: dict[str, Any] = node.get("properties", {})
    skip = ROOT_FIELDS_NOT_COMPARED if path == "" else set()
    prefix = f"{path}." if path else ""
    if set(fields) != set(props):
        problems.append(
            f"{path or '<root>'}: only in pydantic {sorted(set(fields) - set(props))}, "
            f"only in the CRD {sorted(set(props) - set(fields))}"
        )
    required = {alias for alias, f in fields.items() if f.is_required()} - skip
    if required != set(node.get("required", [])):
        problems.append(
            f"{path or '<root>'}: required {sorted(node.get('required', []))} != pydantic {sorted(required)}"
        )
    for alias in sorted(set(fields) & set(props) - skip):
        field, sub = fields[alias], props[alias]
        sub_path = f"{prefix}{alias}"
        field_metadata = list(field.metadata)
        compare(
            Annotated[field.annotation, *field_metadata] if field_metadata else field.annotation,
            sub,
            sub_path,
            problems,
        )
        has_default, default = _wire_default(field)
        if has_default != ("default" in sub) or (has_default and not _same_value(default, sub["default"])):
            problems.append(f"{sub_path}: default {sub.get('default', '<none>')!r} != pydantic {default!r}")


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_crd_and_pydantic_model_agree(kind: str) -> None:
    problems: list[str] = []
    compare_model(MODELS[kind], open_api_schema(kind), "", problems)
    assert problems == []


def test_the_comparison_catches_drift() -> None:
    """The walk above is only worth something if it notices a renamed field, a lost enum value,
    a changed default and a missing bound."""
    schema = open_api_schema("ModelDeployment")
    spec = schema["properties"]["spec"]["properties"]
    spec["autoscaling"]["properties"]["minReplica"] = spec["autoscaling"]["properties"].pop("minReplicas")
    spec["engine"]["properties"]["name"]["enum"].remove("sglang")
    spec["serving"]["properties"]["port"]["default"] = 8080
    del spec["resources"]["properties"]["tensorParallel"]["maximum"]
    problems: list[str] = []
    compare_model(ModelDeployment, schema, "", problems)
    text = "\n".join(problems)
    assert "only in pydantic ['minReplicas'], only in the CRD ['minReplica']" in text
    assert "spec.engine.name: enum" in text
    assert "spec.serving.port: default 8080" in text
    assert "spec.resources.tensorParallel: bounds" in text
    assert len(problems) == 4


# ------------------------------------------------------------------------- structural schema


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_schema_is_structural(kind: str) -> None:
    for path, node in walk(open_api_schema(kind)):
        assert "type" in node, f"{path}: every node needs a type"
        assert set(node) <= SCHEMA_KEYS, f"{path}: unexpected keys {sorted(set(node) - SCHEMA_KEYS)}"
        if node["type"] == "object" and not node.get("x-kubernetes-preserve-unknown-fields"):
            assert "properties" in node or "additionalProperties" in node or path == "metadata", (
                f"{path}: an object without properties would be pruned empty"
            )
        for key in node.get("required", []):
            assert key in node.get("properties", {}), f"{path}: required {key} is not a property"


def test_only_free_form_sub_objects_preserve_unknown_fields() -> None:
    preserved = [
        path
        for kind in MODELS
        for path, node in walk(open_api_schema(kind))
        if node.get("x-kubernetes-preserve-unknown-fields")
    ]
    assert sorted(preserved) == [
        "spec.engine.env[].valueFrom",
        "spec.placement.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[]",
    ]


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_defaults_validate_against_their_own_schema(kind: str) -> None:
    defaults = [(path, node) for path, node in walk(open_api_schema(kind)) if "default" in node]
    assert defaults or kind == "ResidencyPolicy"
    for path, node in defaults:
        errors = list(jsonschema.Draft7Validator(to_json_schema(node)).iter_errors(node["default"]))
        assert errors == [], path


# ------------------------------------------------------------------------- CEL rules

SELF_FIELD = re.compile(r"\bself\.([A-Za-z_][A-Za-z0-9_]*)\b(?!\s*\()")  # fields, not methods


def _rules(kind: str) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    return [
        (path, node, rule)
        for path, node in walk(open_api_schema(kind))
        for rule in node.get("x-kubernetes-validations", [])
    ]


def test_the_required_cel_rules_exist() -> None:
    messages = {rule["message"] for _, _, rule in _rules("ModelDeployment")}
    for expected in (
        "minReplicas must not exceed maxReplicas",
        "percentile must be between 50 and 99",
        "model.source must start with one of hf://, s3://, gs://, pvc://, oci://",
        "tensorParallel * pipelineParallel must equal gpusPerReplica",
        "kvHeads cannot exceed attentionHeads",
    ):
        assert expected in messages
    root = open_api_schema("ModelDeployment")["x-kubernetes-validations"]
    assert root[0]["rule"] == "self.metadata.name.size() <= 40"
    assert "child names" in root[0]["message"]


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_cel_rules_guard_optional_fields_with_has(kind: str) -> None:
    for path, node, rule in _rules(kind):
        assert set(rule) <= {"rule", "message", "fieldPath", "reason"}, path
        assert rule["message"].strip(), f"{path}: every rule needs a message"
        props = node.get("properties", {})
        for name in set(SELF_FIELD.findall(rule["rule"])):
            if path == "" and name == "metadata":
                continue  # metadata.name is always set on the root
            assert name in props, f"{path}: rule reads self.{name}, which the schema lacks"
            if name not in node.get("required", []):
                assert f"has(self.{name})" in rule["rule"], (
                    f"{path}: self.{name} is optional; guard it with has()"
                )
        if "fieldPath" in rule:
            assert rule["fieldPath"].removeprefix(".") in props, f"{path}: fieldPath {rule['fieldPath']}"


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_cel_rules_stay_within_the_cost_budget(kind: str) -> None:
    """The API server estimates a rule's cost from the sizes the schema allows: every list a rule
    sits under or reads needs maxItems, every string it scans needs maxLength."""
    schema = open_api_schema(kind)
    nodes = dict(walk(schema))
    for path, node, rule in _rules(kind):
        for ancestor in (p for p in nodes if p.endswith("[]") and path.startswith(p)):
            assert "maxItems" in nodes[ancestor.removesuffix("[]")], f"{path}: {ancestor} needs maxItems"
        scans = any(f in rule["rule"] for f in (".matches(", ".contains(", ".startsWith("))
        if node["type"] == "string" and scans:
            assert "maxLength" in node, f"{path}: a scanned string needs maxLength"
        for name in set(SELF_FIELD.findall(rule["rule"])) - {"metadata"}:
            sub = node["properties"][name]
            if sub["type"] == "array":
                assert "maxItems" in sub, f"{path}.{name}: a list a rule reads needs maxItems"
                if scans:
                    assert "maxLength" in sub["items"], f"{path}.{name}[]: a scanned string needs maxLength"


def test_selector_shapes_are_the_same_in_both_crds() -> None:
    md = open_api_schema("ModelDeployment")["properties"]["spec"]["properties"]["placement"]["properties"]
    required = md["nodeAffinity"]["properties"]["requiredDuringSchedulingIgnoredDuringExecution"]
    rp = open_api_schema("ResidencyPolicy")["properties"]["spec"]["properties"]
    assert required["properties"]["nodeSelectorTerms"] == {
        k: v for k, v in rp["nodeSelectorTerms"].items() if k != "description"
    }
    term = rp["nodeSelectorTerms"]["items"]["properties"]
    assert term["matchExpressions"] == term["matchFields"]
    label = rp["namespaceSelector"]["properties"]["matchExpressions"]["items"]
    node_rules = term["matchExpressions"]["items"]["x-kubernetes-validations"]
    assert label["x-kubernetes-validations"] == node_rules[:2]  # no Gt/Lt in label selectors


# ------------------------------------------------------------------------- resource definition


def test_model_deployment_names_scope_and_subresources() -> None:
    crd = load_crd("ModelDeployment")
    assert crd["metadata"]["name"] == "modeldeployments.modelplane.dev"
    assert crd["spec"]["group"] == "modelplane.dev"
    assert crd["spec"]["scope"] == "Namespaced"
    assert crd["spec"]["names"]["kind"] == "ModelDeployment"
    assert crd["spec"]["names"]["shortNames"] == ["mdep"]
    assert crd["spec"]["names"]["categories"] == ["modelplane"]
    version = only_version(crd)
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"]["status"] == {}
    assert version["subresources"]["scale"] == {
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    }
    nodes = dict(walk(version["schema"]["openAPIV3Schema"]))
    assert nodes["spec.replicas"]["type"] == nodes["status.replicas"]["type"] == "integer"
    assert nodes["status.selector"]["type"] == "string"


def test_residency_policy_names_and_scope() -> None:
    crd = load_crd("ResidencyPolicy")
    assert crd["metadata"]["name"] == "residencypolicies.modelplane.dev"
    assert crd["spec"]["scope"] == "Cluster"
    assert crd["spec"]["names"]["shortNames"] == ["rp"]
    assert crd["spec"]["names"]["categories"] == ["modelplane"]
    version = only_version(crd)
    assert version["name"] == "v1alpha1"
    assert "status" not in version["schema"]["openAPIV3Schema"]["properties"]


def _column_node(schema: dict[str, Any], json_path: str) -> dict[str, Any] | None:
    nodes = dict(walk(schema))
    return nodes.get(json_path.removeprefix("."))


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_printer_columns_point_at_typed_fields(kind: str) -> None:
    version = only_version(load_crd(kind))
    schema = version["schema"]["openAPIV3Schema"]
    for column in version["additionalPrinterColumns"]:
        if column["jsonPath"] == ".metadata.creationTimestamp":
            assert column["type"] == "date"
            continue
        node = _column_node(schema, column["jsonPath"])
        assert node is not None, f"{column['name']}: {column['jsonPath']} is not in the schema"
        assert node["type"] == column["type"], column["name"]


def test_model_deployment_printer_columns_follow_the_design() -> None:
    columns = only_version(load_crd("ModelDeployment"))["additionalPrinterColumns"]
    table = [(c["name"], c["jsonPath"], c.get("priority", 0)) for c in columns]
    assert table == [
        ("Model", ".spec.model.name", 0),
        ("Class", ".status.plan.class", 0),
        ("Accelerator", ".status.plan.acceleratorSummary", 0),
        ("Ready", ".status.readySummary", 0),
        ("P95", ".status.latencySummary", 0),
        ("Phase", ".status.phase", 0),
        ("Age", ".metadata.creationTimestamp", 0),
        ("Regions", ".status.regionsSummary", 1),
        ("Cost/H", ".status.plan.costPerReplicaHour", 1),
    ]


# ------------------------------------------------------------------------- a full status fits


def test_a_full_status_written_by_the_operator_fits_the_crd() -> None:
    obj = parse_manifest(
        {
            "apiVersion": "modelplane.dev/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": "support-bot", "namespace": "team-a"},
            "spec": {"model": {"name": "meta-llama/Llama-3.1-8B-Instruct"}},
            "status": {
                "observedGeneration": 3,
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
                    "weightsGiB": 14.96,
                    "kvCacheTokens": 34000,
                    "estTimePerOutputTokenMs": 52.1,
                    "costPerReplicaHour": "0.80",
                    "regions": ["eu-west-1"],
                    "rejected": [
                        {"accelerator": "nvidia-t4", "reason": "InsufficientMemory", "message": "x"}
                    ],
                },
                "replicas": 2,
                "readyReplicas": 2,
                "desiredReplicas": 2,
                "selector": "modelplane.dev/deployment=support-bot",
                "latency": {
                    "metric": "TimeToFirstToken",
                    "percentile": 95,
                    "valueMilliseconds": 310,
                    "targetMilliseconds": 500,
                    "observedAt": "2026-01-01T00:00:00Z",
                },
                "endpoint": "http://support-bot.team-a.svc:8000/v1",
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": "Ready",
                        "message": "",
                        "lastTransitionTime": "2026-01-01T00:00:00Z",
                        "observedGeneration": 3,
                    }
                ],
                "readySummary": "2/2",
                "latencySummary": "310ms",
                "regionsSummary": "eu-west-1",
            },
        }
    )
    wire = obj.to_wire()
    jsonschema.validate(wire, to_json_schema(open_api_schema("ModelDeployment")))
    assert wire["status"]["plan"]["class"] == "SLM"  # type: ignore[index]


# ------------------------------------------------------------------------- the invalid table

# The schema keyword behind each kind of API server message (kube-apiserver 1.36's wording).
MESSAGE_KEYWORDS = {
    "Required value": "required",
    "Unsupported value": "enum",
    "less than or equal to": "maximum",
    "greater than or equal to": "minimum",
    "at least 1 char": "minLength",
    "may not be more than": "maxLength",
    "item": "minItems",
    "|": "pattern",
}


def _keyword(message: str) -> str:
    return next(keyword for needle, keyword in MESSAGE_KEYWORDS.items() if needle in message)


def _json_path(parts: Any) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _cel_messages(kind: str) -> set[str]:
    return {rule["message"] for _, _, rule in _rules(kind)}


TABLE = [pytest.param("ModelDeployment", *row, id=row[0]) for row in INVALID_MODEL_DEPLOYMENTS] + [
    pytest.param("ResidencyPolicy", *row, id=f"rp-{row[0]}") for row in INVALID_RESIDENCY_POLICIES
]


@pytest.mark.parametrize(("kind", "case", "manifest", "path", "message"), TABLE)
def test_invalid_manifest_is_refused_by_pydantic_at_its_field(
    kind: str, case: str, manifest: dict[str, Any], path: str, message: str
) -> None:
    with pytest.raises(SpecError) as err:
        parse_manifest(manifest)
    assert [p.path for p in err.value.problems] == [path], f"{case}: {err.value}"


@pytest.mark.parametrize(("kind", "case", "manifest", "path", "message"), TABLE)
def test_invalid_manifest_breaks_the_schema_rule_it_names(
    kind: str, case: str, manifest: dict[str, Any], path: str, message: str
) -> None:
    """A row that names a CEL message breaks no schema rule elsewhere (the CEL rule is the
    point); any other row breaks exactly the schema keyword its message belongs to, at its path."""
    validator = jsonschema.Draft7Validator(to_json_schema(open_api_schema(kind)))
    errors = list(validator.iter_errors(manifest))
    places = [_json_path([*e.absolute_path, *([e.validator_value[-1]] if False else [])]) for e in errors]
    if any(message in cel for cel in _cel_messages(kind)):
        assert all(p == path for p in places), f"{case}: {[e.message for e in errors]}"
        return
    assert len(errors) == 1, f"{case}: {[e.message for e in errors]}"
    (error,) = errors
    assert error.validator == _keyword(message), f"{case}: {error.message}"
    where = _json_path(error.absolute_path)
    if error.validator == "required":
        missing = re.match(r"'([^']+)' is a required property", error.message)
        assert missing is not None
        where = f"{where}.{missing.group(1)}"
    assert where == path


def test_every_cel_rule_has_an_invalid_manifest() -> None:
    for kind, rows in (
        ("ModelDeployment", INVALID_MODEL_DEPLOYMENTS),
        ("ResidencyPolicy", INVALID_RESIDENCY_POLICIES),
    ):
        covered = {cel for cel in _cel_messages(kind) for _, _, _, message in rows if message in cel}
        assert covered == _cel_messages(kind), kind


def test_invalid_manifest_ids_are_unique() -> None:
    rows: list[Row] = INVALID_MODEL_DEPLOYMENTS + INVALID_RESIDENCY_POLICIES
    ids = [row[0] for row in rows]
    assert len(ids) == len(set(ids))
