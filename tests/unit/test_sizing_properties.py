"""Properties of the planner over random fleets and specs."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st
from sizing_helpers import deployment_spec, fleet

from modelplane import api, catalog, sizing
from modelplane.config import OperatorConfig

CONFIG = OperatorConfig()
ACCELERATORS = [a.name for a in catalog.all_accelerators()]
MODELS = [m.name for m in catalog.all_models()]

pools = st.lists(
    st.tuples(st.sampled_from(ACCELERATORS), st.sampled_from([1, 2, 4, 8]), st.integers(1, 3)),
    min_size=0,
    max_size=6,
)
serving = st.fixed_dictionaries(
    {
        "maxContextLength": st.sampled_from([2048, 4096, 8192]),
        "kvCacheSequences": st.integers(1, 4),
    },
    optional={"maxTimePerOutputTokenMilliseconds": st.integers(5, 200)},
)


@settings(max_examples=150, deadline=None)
@given(
    pools=pools,
    model=st.sampled_from(MODELS),
    serving=serving,
    optimize=st.sampled_from(["Cost", "Throughput"]),
)
def test_the_choice_is_the_best_feasible_candidate(
    pools: list[tuple[str, int, int]], model: str, serving: dict[str, int], optimize: str
) -> None:
    m = catalog.get_model(model)
    assert m is not None
    precision = "fp8" if m.native_precision is api.Precision.FP8 else "bf16"
    serving = {**serving, "maxContextLength": min(serving["maxContextLength"], m.max_context_length)}
    spec = deployment_spec(model, precision, serving, optimizeFor=optimize)
    f = fleet(*pools)
    result = sizing.plan_deployment(spec, f, CONFIG)
    feasible = [c for c in result.candidates if c.feasible]
    if result.plan is None:
        assert not feasible
        assert result.reason == sizing.reasons.NO_FEASIBLE_SHAPE
        assert result.message
        return
    p = result.plan
    cost = Decimal(p.cost_per_replica_hour)
    chosen = next(c for c in feasible if c.accelerator == p.accelerator)
    if optimize == "Cost":
        assert all(cost <= c.cost_per_replica_hour for c in feasible)
    else:
        assert all(chosen.cost_per_million_tokens <= c.cost_per_million_tokens for c in feasible)
    # The plan is self-consistent and still feasible on the fleet it came from.
    assert p.gpus_per_replica == p.tensor_parallel * p.pipeline_parallel
    assert p.plan_class == ("SLM" if p.gpus_per_replica == 1 else "LLM")
    assert p.kv_cache_tokens >= p.max_context_length * serving["kvCacheSequences"]
    bound = serving.get("maxTimePerOutputTokenMilliseconds")
    assert bound is None or chosen.time_per_output_token_ms <= bound
    assert sizing.tensor_parallel_problem(m, p.tensor_parallel) is None
    assert p.regions == sorted(p.regions)
    assert sizing.plan_is_feasible(p, spec, f, CONFIG)
    # Every other accelerator in the fleet is explained.
    explained = {r.accelerator for r in p.rejected}
    assert explained == {c.accelerator for c in result.candidates} - {p.accelerator}


@settings(max_examples=60, deadline=None)
@given(model=st.sampled_from(MODELS), tp=st.sampled_from([1, 2, 4, 8, 16]), pp=st.sampled_from([1, 2, 4]))
def test_kv_per_gpu_never_grows_with_tp_and_no_head_is_lost(model: str, tp: int, pp: int) -> None:
    m = catalog.get_model(model)
    assert m is not None
    one = sizing.kv_bytes_per_token(m, api.Precision.BF16, 1, pp)
    many = sizing.kv_bytes_per_token(m, api.Precision.BF16, tp, pp)
    assert 0 < many <= one
    if m.uses_mla:
        assert many == one
    elif sizing.tensor_parallel_problem(m, tp) is None:
        # Across the TP ranks every KV head is held at least once (replicated when TP > kvHeads).
        assert many * tp >= one
        assert (many * tp == one) == (tp <= m.kv_heads)
