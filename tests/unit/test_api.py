"""modelplane.api: defaults, errors that name their field, conditions, selectors."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from modelplane.api import (
    AUTOSCALING,
    PLANNED,
    READY,
    SCHEDULED,
    Condition,
    EngineName,
    LabelSelector,
    LatencyMetric,
    MetricSource,
    ModelDeployment,
    NodeSelectorRequirement,
    OptimizeFor,
    Plan,
    ResidencyPolicy,
    SpecError,
    get_condition,
    parse_manifest,
    parse_model_deployment,
    parse_model_deployment_spec,
    parse_residency_policy,
    set_condition,
)

MINIMAL: dict[str, Any] = {
    "apiVersion": "modelplane.dev/v1alpha1",
    "kind": "ModelDeployment",
    "metadata": {"name": "chat", "namespace": "team-a", "generation": 2, "resourceVersion": "17"},
    "spec": {"model": {"name": "meta-llama/Llama-3.1-8B-Instruct"}},
}


def _problems(obj: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(SpecError) as err:
        parse_model_deployment(obj)
    return [(p.path, p.message) for p in err.value.problems]


def _with_spec(**spec: Any) -> dict[str, Any]:
    obj = copy.deepcopy(MINIMAL)
    obj["spec"].update(spec)
    return obj


# ------------------------------------------------------------------------- defaults


def test_defaults_of_a_minimal_manifest() -> None:
    md = parse_model_deployment(MINIMAL)
    spec = md.spec
    assert spec.model.precision is None  # the catalog's native precision applies later
    assert spec.model.source is None
    assert spec.engine.name is EngineName.VLLM
    assert (spec.engine.args, spec.engine.env) == ([], [])
    assert spec.serving.max_context_length is None
    assert spec.serving.kv_cache_sequences == 1
    assert spec.serving.port == 8000
    assert spec.resources.accelerators == []
    assert spec.resources.optimize_for is OptimizeFor.COST
    assert (spec.resources.gpus_per_replica, spec.resources.tensor_parallel) == (None, None)
    assert spec.replicas == 1
    a = spec.autoscaling
    assert (a.enabled, a.min_replicas, a.max_replicas) == (False, 1, 4)
    assert (a.metric, a.percentile, a.target_milliseconds) == (LatencyMetric.TIME_TO_FIRST_TOKEN, 95, 500)
    assert (a.window_seconds, a.scale_down_stabilization_seconds) == (60, 300)
    assert a.source is MetricSource.PROMETHEUS
    assert spec.placement.residency is None
    assert spec.placement.node_selector == {}
    assert md.status is None


def test_metadata_keeps_what_the_operator_reads_and_ignores_the_rest() -> None:
    md = parse_model_deployment(MINIMAL)
    assert (md.metadata.name, md.metadata.namespace, md.metadata.generation) == ("chat", "team-a", 2)
    assert "resourceVersion" not in md.metadata.model_dump(by_alias=True)


def test_architecture_defaults_its_context_length() -> None:
    arch = {"parameters": 10**9, "layers": 16, "hiddenSize": 2048, "attentionHeads": 32}
    md = parse_model_deployment(_with_spec(model={"name": "acme/tiny", "architecture": arch}))
    assert md.spec.model.architecture is not None
    assert md.spec.model.architecture.max_context_length == 8192
    assert md.spec.model.architecture.kv_heads is None


def test_wire_form_round_trips_in_camel_case() -> None:
    md = parse_model_deployment(_with_spec(serving={"maxTimePerOutputTokenMilliseconds": 80}))
    wire = md.to_wire()
    assert wire["spec"]["serving"]["maxTimePerOutputTokenMilliseconds"] == 80  # type: ignore[index]
    assert "max_time_per_output_token_milliseconds" not in str(wire)
    assert parse_model_deployment(wire) == md


def test_models_are_frozen() -> None:
    md = parse_model_deployment(MINIMAL)
    with pytest.raises(ValidationError):
        md.spec.replicas = 3  # type: ignore[misc]


def test_snake_case_names_are_accepted_in_python() -> None:
    plan = Plan(
        plan_class="LLM",
        accelerator="nvidia-h100-80gb",
        accelerator_summary="16x nvidia-h100-80gb",
        gpus_per_replica=16,
        tensor_parallel=8,
        pipeline_parallel=2,
        nodes_per_replica=2,
        precision="bf16",
        max_context_length=8192,
        weights_gi_b=756.0,
        kv_cache_tokens=100_000,
        est_time_per_output_token_ms=40.0,
        cost_per_replica_hour="47.20",
    )
    wire = plan.to_wire()
    assert wire["class"] == "LLM"
    assert wire["acceleratorSummary"] == "16x nvidia-h100-80gb"
    assert wire["weightsGiB"] == 756.0
    with pytest.raises(ValidationError):
        Plan.model_validate({**wire, "class": "XLM"})


# ------------------------------------------------------------------------- errors name the field


def test_unknown_field_is_named() -> None:
    assert _problems(_with_spec(modle={"name": "x"})) == [("spec.modle", "unknown field")]


def test_unknown_nested_field_is_named() -> None:
    assert _problems(_with_spec(autoscaling={"minReplica": 2})) == [
        ("spec.autoscaling.minReplica", "unknown field")
    ]


def test_every_problem_is_reported_at_once() -> None:
    problems = _problems(_with_spec(replicas=-1, serving={"port": 0}, engine={"name": "tgi"}))
    assert [path for path, _ in problems] == ["spec.engine.name", "spec.serving.port", "spec.replicas"]


def test_list_items_are_named_by_index() -> None:
    env = [{"name": "A", "value": "1"}, {"value": "2"}]
    assert [p for p, _ in _problems(_with_spec(engine={"env": env}))] == ["spec.engine.env[1].name"]


def test_cross_field_errors_name_the_field_and_the_values() -> None:
    ((path, message),) = _problems(_with_spec(autoscaling={"minReplicas": 6, "maxReplicas": 3}))
    assert path == "spec.autoscaling.minReplicas"
    assert message == "minReplicas (6) must not exceed maxReplicas (3)"
    ((path, message),) = _problems(
        _with_spec(resources={"gpusPerReplica": 8, "tensorParallel": 4, "pipelineParallel": 4})
    )
    assert path == "spec.resources.gpusPerReplica"
    assert "(4 * 4 = 16)" in message
    assert "(8)" in message


def test_consistent_parallelism_is_accepted() -> None:
    md = parse_model_deployment(
        _with_spec(resources={"gpusPerReplica": 16, "tensorParallel": 8, "pipelineParallel": 2})
    )
    assert md.spec.resources.gpus_per_replica == 16


def test_source_scheme_message_lists_the_allowed_schemes() -> None:
    ((path, message),) = _problems(_with_spec(model={"name": "x", "source": "ftp://host/model"}))
    assert path == "spec.model.source"
    assert message == "must start with one of hf://, s3://, gs://, pvc://, oci://"


@pytest.mark.parametrize(
    "source", ["hf://a/b", "s3://bucket/key/", "gs://b/k", "pvc://models/llama", "oci://r/m:1"]
)
def test_allowed_sources(source: str) -> None:
    assert (
        parse_model_deployment(_with_spec(model={"name": "x", "source": source})).spec.model.source == source
    )


def test_name_length_names_metadata_name() -> None:
    obj = copy.deepcopy(MINIMAL)
    obj["metadata"]["name"] = "x" * 41
    ((path, message),) = _problems(obj)
    assert path == "metadata.name"
    assert "40 characters" in message
    obj["metadata"]["name"] = "x" * 40
    assert parse_model_deployment(obj).metadata.name == "x" * 40


def test_wrong_api_version_and_kind_are_named() -> None:
    obj = copy.deepcopy(MINIMAL)
    obj["apiVersion"] = "modelplane.dev/v1"
    assert [p for p, _ in _problems(obj)] == ["apiVersion"]
    with pytest.raises(SpecError) as err:
        parse_manifest({**MINIMAL, "kind": "Deployment"})
    assert [p.path for p in err.value.problems] == ["kind"]


def test_spec_alone_gets_paths_under_spec() -> None:
    with pytest.raises(SpecError) as err:
        parse_model_deployment_spec({"model": {"name": "x"}, "autoscaling": {"percentile": 100}})
    assert [p.path for p in err.value.problems] == ["spec.autoscaling.percentile"]
    assert str(err.value).startswith("spec.autoscaling.percentile: ")


def test_parse_manifest_dispatches_on_kind() -> None:
    policy = {
        "apiVersion": "modelplane.dev/v1alpha1",
        "kind": "ResidencyPolicy",
        "metadata": {"name": "eu"},
        "spec": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": "r", "operator": "In", "values": ["a"]}]}]
        },
    }
    assert isinstance(parse_manifest(policy), ResidencyPolicy)
    assert isinstance(parse_manifest(MINIMAL), ModelDeployment)
    assert parse_residency_policy(policy).spec.namespace_selector is None


@pytest.mark.parametrize(
    ("operator", "values", "error"),
    [
        ("In", [], "operator In needs at least one value"),
        ("NotIn", [], "operator NotIn needs at least one value"),
        ("Exists", ["a"], "operator Exists takes no values"),
        ("DoesNotExist", ["a"], "operator DoesNotExist takes no values"),
        ("Gt", ["1", "2"], "operator Gt needs exactly one integer value"),
        ("Lt", ["x"], "operator Lt needs exactly one integer value"),
        ("Gt", ["--4"], "operator Gt needs exactly one integer value"),
        ("In", ["a"], None),
        ("Exists", [], None),
        ("Gt", ["-4"], None),
        ("Lt", ["12"], None),
    ],
)
def test_node_selector_requirement_values_fit_the_operator(
    operator: str, values: list[str], error: str | None
) -> None:
    raw = {"key": "k", "operator": operator, "values": values}
    if error is None:
        assert NodeSelectorRequirement.model_validate(raw).values == values
    else:
        with pytest.raises(ValidationError, match=error):
            NodeSelectorRequirement.model_validate(raw)


# ------------------------------------------------------------------------- conditions

T0, T1, T2 = "2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z", "2026-01-01T00:10:00Z"


def test_a_new_condition_starts_now() -> None:
    (c,) = set_condition([], READY, "False", "Provisioning", "0/2 ready", T0, 1)
    assert c == Condition(
        type=READY,
        status="False",
        reason="Provisioning",
        message="0/2 ready",
        last_transition_time=T0,
        observed_generation=1,
    )


def test_transition_time_stays_while_status_stays() -> None:
    first = set_condition([], READY, "False", "Provisioning", "0/2 ready", T0, 1)
    second = set_condition(first, READY, "False", "Scheduling", "1/2 ready", T1, 2)
    (c,) = second
    assert c.last_transition_time == T0
    assert (c.reason, c.message, c.observed_generation) == ("Scheduling", "1/2 ready", 2)


def test_transition_time_moves_when_status_flips() -> None:
    conditions = set_condition([], READY, "False", "Provisioning", "", T0, 1)
    conditions = set_condition(conditions, READY, "True", "Ready", "2/2 ready", T1, 1)
    assert conditions[0].last_transition_time == T1
    conditions = set_condition(conditions, READY, "Unknown", "Unreachable", "", T2, 1)
    assert conditions[0].last_transition_time == T2


def test_other_conditions_are_kept_in_reading_order_and_inputs_untouched() -> None:
    conditions = set_condition([], AUTOSCALING, "True", "Scaling", "", T0, 1)
    conditions = set_condition(conditions, READY, "True", "Ready", "", T0, 1)
    before = list(conditions)
    after = set_condition(conditions, PLANNED, "True", "Planned", "1x nvidia-l4", T1, 1)
    after = set_condition(after, "Custom", "False", "Other", "", T1, 1)
    after = set_condition(after, SCHEDULED, "True", "Scheduled", "", T1, 1)
    assert [c.type for c in after] == [PLANNED, SCHEDULED, READY, AUTOSCALING, "Custom"]
    assert conditions == before
    ready = get_condition(after, READY)
    assert ready is not None
    assert ready.last_transition_time == T0
    assert get_condition(after, "Missing") is None


def test_condition_status_must_be_true_false_or_unknown() -> None:
    with pytest.raises(ValueError, match="True, False or Unknown"):
        set_condition([], READY, "Yes", "Ready", "", T0, 1)
    with pytest.raises(ValidationError):
        Condition.model_validate({"type": READY, "status": "Yes", "reason": "R", "lastTransitionTime": T0})


# ------------------------------------------------------------------------- label selectors


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ({}, {}, True),
        ({}, {"any": "thing"}, True),
        ({"matchLabels": {"modelplane.dev/residency": "eu"}}, {"modelplane.dev/residency": "eu"}, True),
        ({"matchLabels": {"modelplane.dev/residency": "eu"}}, {"modelplane.dev/residency": "us"}, False),
        ({"matchLabels": {"modelplane.dev/residency": "eu"}}, {}, False),
        (
            {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]},
            {"tier": "b"},
            True,
        ),
        (
            {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]},
            {"tier": "c"},
            False,
        ),
        ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["a"]}]}, {}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["a"]}]}, {"tier": "b"}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["a"]}]}, {"tier": "a"}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["a"]}]}, {}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, {"tier": ""}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, {}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, {}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, {"tier": "a"}, False),
        (
            {"matchLabels": {"team": "x"}, "matchExpressions": [{"key": "tier", "operator": "Exists"}]},
            {"team": "x"},
            False,
        ),
        (
            {"matchLabels": {"team": "x"}, "matchExpressions": [{"key": "tier", "operator": "Exists"}]},
            {"team": "x", "tier": "a"},
            True,
        ),
    ],
)
def test_label_selector_matches(selector: dict[str, Any], labels: dict[str, str], expected: bool) -> None:
    assert LabelSelector.model_validate(selector).matches(labels) is expected


def test_label_selector_requirement_values_fit_the_operator() -> None:
    with pytest.raises(ValidationError, match="operator In needs at least one value"):
        LabelSelector.model_validate({"matchExpressions": [{"key": "k", "operator": "In"}]})
    with pytest.raises(ValidationError, match="operator Exists takes no values"):
        LabelSelector.model_validate(
            {"matchExpressions": [{"key": "k", "operator": "Exists", "values": ["v"]}]}
        )
    with pytest.raises(ValidationError):
        LabelSelector.model_validate({"matchExpressions": [{"key": "k", "operator": "Gt", "values": ["1"]}]})
