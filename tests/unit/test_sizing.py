"""The planner against the shapes practitioners run, the TP rules, and the KV arithmetic."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sizing_helpers import deployment_spec, fleet

from modelplane import api, catalog, sizing
from modelplane.config import OperatorConfig
from modelplane.placement import Fleet, default_fleet
from modelplane.sizing import reasons

CONFIG = OperatorConfig()
LLAMA_8B = "meta-llama/Llama-3.1-8B-Instruct"
LLAMA_70B = "meta-llama/Llama-3.1-70B-Instruct"
LLAMA_405B = "meta-llama/Llama-3.1-405B-Instruct"


def model(name: str) -> catalog.ModelArchitecture:
    m = catalog.get_model(name)
    assert m is not None
    return m


def plan(spec: api.ModelDeploymentSpec, fleet: Fleet | None = None) -> api.Plan:
    result = sizing.plan_deployment(spec, fleet if fleet is not None else default_fleet(), CONFIG)
    assert result.plan is not None, result.message
    return result.plan


# ----------------------------------------------------------------------------- KV arithmetic


def test_gqa_kv_bytes_per_token() -> None:
    llama = model(LLAMA_8B)
    assert sizing.kv_bytes_per_token(llama, api.Precision.BF16) == 131_072
    assert sizing.kv_bytes_per_token(llama, api.Precision.FP32) == 262_144
    assert sizing.kv_bytes_per_token(llama, api.Precision.FP8) == 131_072  # KV stays 16-bit
    # TP up to kvHeads splits the heads; beyond it they are replicated (one head per GPU).
    assert sizing.kv_bytes_per_token(llama, api.Precision.BF16, tensor_parallel=4) == 131_072 // 4
    assert sizing.kv_bytes_per_token(llama, api.Precision.BF16, tensor_parallel=8) == 131_072 // 8
    assert sizing.kv_bytes_per_token(llama, api.Precision.BF16, tensor_parallel=16) == 131_072 // 8
    assert sizing.kv_heads_per_gpu(llama, 16) == 1
    # PP splits the layers.
    assert sizing.kv_bytes_per_token(llama, api.Precision.BF16, pipeline_parallel=2) == 131_072 // 2


@pytest.mark.parametrize(
    ("name", "per_token"),
    [
        ("meta-llama/Llama-3.2-1B-Instruct", 32_768),
        (LLAMA_70B, 327_680),
        (LLAMA_405B, 516_096),
        ("Qwen/Qwen2.5-7B-Instruct", 57_344),
        ("Qwen/Qwen3-0.6B", 114_688),  # head_dim 128, not 1024/16
        ("microsoft/Phi-3-mini-4k-instruct", 393_216),  # no GQA
        ("google/gemma-2-9b-it", 344_064),  # head_dim 256, not 3584/16
        ("google/gemma-3-27b-it", 507_904),
    ],
)
def test_kv_bytes_per_token_match_the_reference(name: str, per_token: int) -> None:
    assert sizing.kv_bytes_per_token(model(name), api.Precision.BF16) == per_token


def test_mla_kv_is_the_latent_and_is_not_divided_by_tp() -> None:
    ds = model("deepseek-ai/DeepSeek-V3")
    assert sizing.kv_bytes_per_token(ds, api.Precision.BF16) == 70_272
    assert sizing.kv_bytes_per_token(ds, api.Precision.FP8) == 70_272
    assert sizing.kv_bytes_per_token(ds, api.Precision.BF16, tensor_parallel=8) == 70_272


def test_weights() -> None:
    assert sizing.weights_gib(model(LLAMA_8B), api.Precision.BF16) == pytest.approx(14.96, abs=0.01)
    assert sizing.weights_gib(model(LLAMA_70B), api.Precision.BF16) == pytest.approx(131.4, abs=0.1)
    assert sizing.weights_gib(model(LLAMA_405B), api.Precision.FP8) == pytest.approx(378.0, abs=0.1)
    assert sizing.weights_gib(model(LLAMA_8B), api.Precision.INT4) < 4


# -------------------------------------------------------------------------------- TP rules


def test_tensor_parallel_rules() -> None:
    assert sizing.valid_tensor_parallel(model("Qwen/Qwen2.5-7B-Instruct"), 8) == [1, 2, 4]
    assert sizing.valid_tensor_parallel(model("microsoft/phi-4"), 8) == [1, 2]
    assert sizing.valid_tensor_parallel(model("Qwen/Qwen2.5-0.5B-Instruct"), 8) == [1, 2]
    assert sizing.valid_tensor_parallel(model("google/gemma-3-1b-it"), 8) == [1, 2, 4]
    assert sizing.valid_tensor_parallel(model(LLAMA_70B), 8) == [1, 2, 4, 8]
    assert sizing.valid_tensor_parallel(model(LLAMA_70B), 4) == [1, 2, 4]
    assert "power of two" in (sizing.tensor_parallel_problem(model(LLAMA_70B), 6) or "")


@pytest.mark.parametrize(
    "accelerator", ["nvidia-t4", "nvidia-l4", "nvidia-a10g", "nvidia-l40s", "nvidia-h100-80gb"]
)
def test_qwen25_7b_never_gets_tp_8(accelerator: str) -> None:
    for ctx in (8192, 32768):
        spec = deployment_spec(
            "Qwen/Qwen2.5-7B-Instruct", "fp16", {"maxContextLength": ctx, "kvCacheSequences": 4}
        )
        result = sizing.plan_deployment(spec, fleet((accelerator, 8, 2)), CONFIG)
        if result.plan is not None:
            assert result.plan.tensor_parallel in (1, 2, 4)


def test_qwen25_7b_tp_8_override_is_rejected() -> None:
    spec = deployment_spec("Qwen/Qwen2.5-7B-Instruct", tensorParallel=8)
    result = sizing.plan_deployment(spec, fleet(("nvidia-l4", 8, 1)), CONFIG)
    assert result.plan is None
    (rej,) = result.rejected
    assert rej.reason == reasons.INVALID_TENSOR_PARALLEL
    assert "28 attention heads" in (rej.message or "")


def test_phi4_only_tp_1_or_2() -> None:
    for accelerator in ("nvidia-t4", "nvidia-l4", "nvidia-a10g"):
        result = sizing.plan_deployment(
            deployment_spec("microsoft/phi-4", "int8", {"maxContextLength": 16384}),
            fleet((accelerator, 8, 1)),
            CONFIG,
        )
        if result.plan is not None:
            assert result.plan.tensor_parallel in (1, 2)
    spec = deployment_spec("microsoft/phi-4", tensorParallel=4)
    result = sizing.plan_deployment(spec, fleet(("nvidia-l4", 8, 1)), CONFIG)
    assert result.plan is None
    assert result.rejected[0].reason == reasons.INVALID_TENSOR_PARALLEL


# ------------------------------------------------------------------- shapes practitioners run


@pytest.mark.parametrize(
    ("name", "precision", "accelerator", "gpus", "tp", "pp", "nodes"),
    [
        (LLAMA_70B, None, "nvidia-h100-80gb", 4, 4, 1, 1),
        (LLAMA_70B, None, "nvidia-h200", 2, 2, 1, 1),
        ("meta-llama/Llama-3.3-70B-Instruct", None, "nvidia-a100-80gb", 4, 4, 1, 1),
        (LLAMA_70B, "fp8", "nvidia-h100-80gb", 2, 2, 1, 1),
        (LLAMA_405B, None, "nvidia-h100-80gb", 16, 8, 2, 2),
        (LLAMA_405B, "fp8", "nvidia-h100-80gb", 8, 8, 1, 1),
        ("meta-llama/Llama-3.1-405B-Instruct-FP8", None, "nvidia-h100-80gb", 8, 8, 1, 1),
        (LLAMA_405B, None, "amd-mi300x", 8, 8, 1, 1),
        ("deepseek-ai/DeepSeek-V3", None, "nvidia-h200", 8, 8, 1, 1),
        ("deepseek-ai/DeepSeek-V3", None, "nvidia-h100-80gb", 16, 8, 2, 2),
        ("mistralai/Mixtral-8x7B-Instruct-v0.1", None, "nvidia-h100-80gb", 2, 2, 1, 1),
        (LLAMA_8B, None, "nvidia-l4", 1, 1, 1, 1),
        ("Qwen/Qwen3-32B", None, "nvidia-l40s", 2, 2, 1, 1),
    ],
)
def test_shapes_practitioners_run(
    name: str, precision: str | None, accelerator: str, gpus: int, tp: int, pp: int, nodes: int
) -> None:
    spec = deployment_spec(name, precision, accelerators=[accelerator])
    p = plan(spec, fleet=fleet((accelerator, 8, 2)))
    assert (
        p.accelerator,
        p.gpus_per_replica,
        p.tensor_parallel,
        p.pipeline_parallel,
        p.nodes_per_replica,
    ) == (
        accelerator,
        gpus,
        tp,
        pp,
        nodes,
    )
    assert p.plan_class == ("SLM" if gpus == 1 else "LLM")


def test_llama_8b_is_an_slm_on_one_l4_when_optimizing_for_cost() -> None:
    p = plan(deployment_spec(LLAMA_8B))
    assert (p.plan_class, p.accelerator, p.gpus_per_replica) == ("SLM", "nvidia-l4", 1)
    assert p.accelerator_summary == "1x nvidia-l4"
    assert p.precision is api.Precision.BF16
    assert p.max_context_length == 8192  # the model's 131072, capped
    assert p.weights_gi_b == pytest.approx(14.96, abs=0.01)
    assert p.cost_per_replica_hour == "0.80"
    # usable = 24e9 B as GiB x 0.9 - 1 = 19.12 GiB; KV = 19.12 - 14.96 GiB at 131072 B/token
    assert p.kv_cache_tokens == pytest.approx(34_070, abs=5)
    assert p.est_time_per_output_token_ms == pytest.approx(16.06e9 / 300e9 * 1e3, abs=0.1)
    reasons_by_acc = {r.accelerator: r.reason for r in p.rejected}
    assert reasons_by_acc["nvidia-t4"] == reasons.UNSUPPORTED_PRECISION  # no bf16 on Turing
    assert reasons_by_acc["nvidia-h100-80gb"] == reasons.NOT_CHEAPEST


def test_throughput_prefers_the_cheapest_token_not_the_cheapest_replica() -> None:
    cost = plan(deployment_spec(LLAMA_8B))
    fast = plan(deployment_spec(LLAMA_8B, optimizeFor="Throughput"))
    assert cost.accelerator == "nvidia-l4"
    assert fast.accelerator != "nvidia-l4"
    assert Decimal(fast.cost_per_replica_hour) > Decimal(cost.cost_per_replica_hour)


def test_405b_on_one_node_is_not_enough_nodes() -> None:
    result = sizing.plan_deployment(
        deployment_spec(LLAMA_405B, accelerators=["nvidia-h100-80gb"]),
        fleet(("nvidia-h100-80gb", 8, 1)),
        CONFIG,
    )
    assert result.plan is None
    assert result.reason == reasons.NO_FEASIBLE_SHAPE
    (rej,) = result.rejected
    assert rej.reason == reasons.NOT_ENOUGH_NODES
    assert "2 nodes" in (rej.message or "")
    assert "NotEnoughNodes" in result.message


def test_insufficient_memory_message_names_weights_and_gpus() -> None:
    result = sizing.plan_deployment(
        deployment_spec(LLAMA_70B, pipelineParallel=1), fleet(("nvidia-h100-80gb", 1, 3)), CONFIG
    )
    assert result.plan is None
    (rej,) = result.rejected
    assert rej.reason == reasons.INSUFFICIENT_MEMORY
    assert "131.4 GiB" in (rej.message or "")
    assert "≥ 2 GPUs" in (rej.message or "")


def test_kv_cache_share_makes_two_h100_too_small_for_70b() -> None:
    spec = deployment_spec(LLAMA_70B, gpusPerReplica=2)
    result = sizing.plan_deployment(spec, fleet(("nvidia-h100-80gb", 8, 1)), CONFIG)
    assert result.plan is None
    assert result.rejected[0].reason == reasons.INSUFFICIENT_KV_CACHE


def test_kv_cache_sequences_and_context_drive_the_kv_requirement() -> None:
    small = deployment_spec(LLAMA_8B, serving={"maxContextLength": 8192}, accelerators=["nvidia-l4"])
    big = deployment_spec(
        LLAMA_8B, serving={"maxContextLength": 32768, "kvCacheSequences": 2}, accelerators=["nvidia-l4"]
    )
    assert plan(small).gpus_per_replica == 1
    assert plan(big).gpus_per_replica == 2


def test_latency_bound_rejects_slow_gpus_and_scales_tp() -> None:
    spec = deployment_spec(LLAMA_8B, serving={"maxTimePerOutputTokenMilliseconds": 30})
    p = plan(spec)
    assert p.est_time_per_output_token_ms <= 30
    rejected = {r.accelerator: r for r in p.rejected}
    assert rejected["nvidia-t4"].reason == reasons.UNSUPPORTED_PRECISION
    # L4 at TP 1 is 53.5 ms; TP 2 halves it
    l4 = plan(
        deployment_spec(
            LLAMA_8B, serving={"maxTimePerOutputTokenMilliseconds": 30}, accelerators=["nvidia-l4"]
        )
    )
    assert l4.tensor_parallel == 2
    # 70B in bf16 reads 141 GB per token: even TP 8 on B200 (8 TB/s) takes 2.2 ms.
    too_fast = sizing.plan_deployment(
        deployment_spec(LLAMA_70B, serving={"maxTimePerOutputTokenMilliseconds": 2}), default_fleet(), CONFIG
    )
    assert too_fast.plan is None
    assert {r.reason for r in too_fast.rejected} >= {reasons.TOO_SLOW}


def test_moe_roofline_reads_active_parameters() -> None:
    moe = plan(deployment_spec("Qwen/Qwen3-30B-A3B", accelerators=["nvidia-h100-80gb"]))
    dense = plan(deployment_spec("Qwen/Qwen3-32B", accelerators=["nvidia-h100-80gb"]))
    assert moe.est_time_per_output_token_ms < dense.est_time_per_output_token_ms / 5


# ----------------------------------------------------------------------------- overrides


def test_overrides_pin_the_shape() -> None:
    p = plan(deployment_spec(LLAMA_8B, accelerators=["nvidia-h100-80gb"], tensorParallel=2))
    assert (p.tensor_parallel, p.pipeline_parallel, p.gpus_per_replica) == (2, 1, 2)
    p = plan(deployment_spec(LLAMA_8B, accelerators=["nvidia-l40s"], gpusPerReplica=4))
    assert (p.tensor_parallel, p.pipeline_parallel) == (4, 1)
    p = plan(deployment_spec(LLAMA_8B, accelerators=["nvidia-l40s"], pipelineParallel=2))
    assert (p.tensor_parallel, p.pipeline_parallel, p.nodes_per_replica) == (1, 2, 1)
    p = plan(
        deployment_spec(LLAMA_70B, accelerators=["nvidia-h100-80gb"], gpusPerReplica=16),
        fleet=fleet(("nvidia-h100-80gb", 8, 2)),
    )
    assert (p.tensor_parallel, p.pipeline_parallel, p.nodes_per_replica) == (8, 2, 2)


def test_tp_override_larger_than_the_node() -> None:
    result = sizing.plan_deployment(
        deployment_spec(LLAMA_70B, tensorParallel=8), fleet(("nvidia-h100-80gb", 4, 4)), CONFIG
    )
    assert result.plan is None
    assert result.rejected[0].reason == reasons.INVALID_TENSOR_PARALLEL
    assert "nodes have 4" in (result.rejected[0].message or "")


def test_allow_list() -> None:
    result = sizing.plan_deployment(
        deployment_spec(LLAMA_8B, accelerators=["nvidia-h100-80gb"]), default_fleet(), CONFIG
    )
    assert result.plan is not None
    assert result.plan.accelerator == "nvidia-h100-80gb"
    assert {r.reason for r in result.rejected} == {reasons.NOT_ALLOWED}
    missing = sizing.plan_deployment(
        deployment_spec(LLAMA_8B, accelerators=["nvidia-b200"]), fleet(("nvidia-l4", 1, 1)), CONFIG
    )
    assert missing.plan is None
    assert [(r.accelerator, r.reason) for r in missing.rejected] == [
        ("nvidia-l4", reasons.NOT_ALLOWED),
        ("nvidia-b200", reasons.NOT_IN_FLEET),
    ]


@pytest.mark.parametrize(
    ("spec_kwargs", "path"),
    [
        ({"accelerators": ["nvidia-l4", "nvidia-h100"]}, "spec.resources.accelerators[1]"),
        ({"serving": {"maxContextLength": 200_000}}, "spec.serving.maxContextLength"),
        ({"precision": "fp32", "model": "deepseek-ai/DeepSeek-V3"}, "spec.model.precision"),
        ({"model": "acme/unknown"}, "spec.model.architecture"),
        ({"gpusPerReplica": 6, "tensorParallel": 4}, "spec.resources.gpusPerReplica"),
    ],
)
def test_bad_specs_raise_spec_errors_naming_the_field(spec_kwargs: dict[str, object], path: str) -> None:
    kwargs = dict(spec_kwargs)
    name = str(kwargs.pop("model", LLAMA_8B))
    spec = deployment_spec(name, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(api.SpecError) as err:
        sizing.plan_deployment(spec, default_fleet(), CONFIG)
    assert err.value.problems[0].path == path


def test_context_default_is_the_models_own_when_smaller() -> None:
    p = plan(deployment_spec("google/gemma-2-2b-it"))
    assert p.max_context_length == 8192
    p = plan(deployment_spec("microsoft/Phi-3-mini-4k-instruct"))
    assert p.max_context_length == 4096


def test_custom_architecture() -> None:
    arch = {"parameters": 3_000_000_000, "layers": 26, "hiddenSize": 3072, "attentionHeads": 24, "kvHeads": 8}
    p = plan(deployment_spec("acme/house-3b", architecture=arch))
    assert p.plan_class == "SLM"
    assert p.max_context_length == 8192


def test_prices_come_from_the_config() -> None:
    config = OperatorConfig(prices={"nvidia-l4": "5.00"})
    result = sizing.plan_deployment(deployment_spec(LLAMA_8B), default_fleet(), config)
    assert result.plan is not None
    assert result.plan.accelerator == "nvidia-a10g"
    assert result.plan.cost_per_replica_hour == "1.01"
    bad = OperatorConfig(prices={"nvidia-l4": "cheap"})
    with pytest.raises(api.SpecError) as err:
        sizing.plan_deployment(deployment_spec(LLAMA_8B), default_fleet(), bad)
    assert err.value.problems[0].path == "config.prices.nvidia-l4"


# ---------------------------------------------------------------------------- residency


def test_residency_excluded_accelerators_and_no_compliant_capacity() -> None:
    allowed = fleet(("nvidia-l4", 1, 2, "eu-west-1"))
    outside = fleet(("nvidia-h100-80gb", 8, 1, "us-east-1"))
    ok = sizing.plan_deployment(deployment_spec(LLAMA_8B), allowed, CONFIG, excluded=outside)
    assert ok.plan is not None
    assert ok.plan.regions == ["eu-west-1"]
    assert [(r.accelerator, r.reason) for r in ok.plan.rejected] == [
        ("nvidia-h100-80gb", reasons.NOT_IN_RESIDENCY_REGIONS)
    ]
    assert "us-east-1" in (ok.plan.rejected[0].message or "")
    big = sizing.plan_deployment(deployment_spec(LLAMA_70B), allowed, CONFIG, excluded=outside)
    assert big.plan is None
    assert big.reason == reasons.NO_COMPLIANT_CAPACITY
    assert "Outside the residency policy, nvidia-h100-80gb would fit" in big.message


def test_regions_are_every_region_that_can_host_the_shape() -> None:
    f = fleet(
        ("nvidia-l4", 1, 1, "us-east-1"), ("nvidia-l4", 4, 1, "eu-west-1"), ("nvidia-l4", 1, 1, "ap-south-1")
    )
    p = plan(deployment_spec(LLAMA_8B), fleet=f)
    assert p.regions == ["ap-south-1", "eu-west-1", "us-east-1"]
    p2 = plan(deployment_spec(LLAMA_8B, gpusPerReplica=2), fleet=f)
    assert p2.regions == ["eu-west-1"]


def test_empty_fleet_explains_itself() -> None:
    result = sizing.plan_deployment(deployment_spec(LLAMA_8B), fleet(), CONFIG)
    assert result.plan is None
    assert result.reason == reasons.NO_FEASIBLE_SHAPE
    assert "no Ready, schedulable GPU nodes" in result.message


# --------------------------------------------------------------------- running plan checks


def test_plan_is_feasible_and_cheaper_than() -> None:
    spec = deployment_spec(LLAMA_8B)
    h100 = sizing.plan_deployment(
        deployment_spec(LLAMA_8B, accelerators=["nvidia-h100-80gb"]), default_fleet(), CONFIG
    )
    assert h100.plan is not None
    assert sizing.plan_is_feasible(h100.plan, spec, default_fleet(), CONFIG)
    best = sizing.plan_deployment(spec, default_fleet(), CONFIG)
    assert best.cheaper_than(h100.plan)
    assert not h100.cheaper_than(best.plan)
    assert best.cheaper_than(None)
    # The H100 node leaves: the running plan no longer fits.
    no_h100 = default_fleet().filter(lambda n: n.accelerator != "nvidia-h100-80gb")
    assert not sizing.plan_is_feasible(h100.plan, spec, no_h100, CONFIG)
    # The spec changes precision or forbids the accelerator: the plan no longer matches.
    assert not sizing.plan_is_feasible(h100.plan, deployment_spec(LLAMA_8B, "fp8"), default_fleet(), CONFIG)
    assert not sizing.plan_is_feasible(
        h100.plan, deployment_spec(LLAMA_8B, accelerators=["nvidia-l4"]), default_fleet(), CONFIG
    )
    assert not sizing.plan_is_feasible(
        h100.plan,
        deployment_spec(LLAMA_8B, serving={"maxTimePerOutputTokenMilliseconds": 1}),
        default_fleet(),
        CONFIG,
    )
