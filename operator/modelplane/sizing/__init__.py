"""Sizing: memory math and the planner that turns a model into a right-sized serving shape."""

from . import reasons
from .memory import (
    WEIGHT_BYTES,
    kv_bytes_per_token,
    kv_heads_per_gpu,
    time_per_output_token_ms,
    usable_gib,
    weights_gib,
)
from .planner import (
    DEFAULT_MAX_CONTEXT,
    Candidate,
    PlanResult,
    Request,
    evaluate_fleet,
    plan_deployment,
    plan_is_feasible,
    resolve_request,
)
from .shapes import Shape, tensor_parallel_problem, valid_tensor_parallel

__all__ = [
    "DEFAULT_MAX_CONTEXT",
    "WEIGHT_BYTES",
    "Candidate",
    "PlanResult",
    "Request",
    "Shape",
    "evaluate_fleet",
    "kv_bytes_per_token",
    "kv_heads_per_gpu",
    "plan_deployment",
    "plan_is_feasible",
    "reasons",
    "resolve_request",
    "tensor_parallel_problem",
    "time_per_output_token_ms",
    "usable_gib",
    "valid_tensor_parallel",
    "weights_gib",
]
