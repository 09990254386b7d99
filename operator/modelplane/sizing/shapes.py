"""Replica shapes (tensor x pipeline parallel) and the rules that make a shape valid for a model."""

from __future__ import annotations

from dataclasses import dataclass

from ..catalog import ModelArchitecture

MAX_PIPELINE_STAGES = 64


@dataclass(frozen=True, order=True)
class Shape:
    tensor_parallel: int
    pipeline_parallel: int = 1

    @property
    def gpus(self) -> int:
        return self.tensor_parallel * self.pipeline_parallel

    def nodes(self, gpus_per_node: int) -> int:
        """One node when the whole replica fits on one; otherwise one node per pipeline stage."""
        return 1 if self.gpus <= gpus_per_node else self.pipeline_parallel

    def fits_capacity(self, node_gpus: tuple[int, ...]) -> bool:
        """Whether nodes with these GPU counts can host one replica of this shape."""
        if any(n >= self.gpus for n in node_gpus):
            return True
        if self.pipeline_parallel == 1:
            return False
        return sum(1 for n in node_gpus if n >= self.tensor_parallel) >= self.pipeline_parallel


def is_power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def tensor_parallel_problem(model: ModelArchitecture, tp: int) -> str | None:
    """Why TP `tp` cannot serve the model (vLLM's rules), or None when it can."""
    if not is_power_of_two(tp):
        return f"TP {tp} is not a power of two"
    if model.attention_heads % tp:
        return f"TP {tp} does not divide the {model.attention_heads} attention heads of {model.name}"
    if not model.uses_mla and model.kv_heads % tp and tp % model.kv_heads:
        return f"TP {tp} and the {model.kv_heads} KV heads of {model.name} do not divide one another"
    return None


def valid_tensor_parallel(model: ModelArchitecture, max_tp: int) -> list[int]:
    """The TP sizes vLLM accepts for the model, up to `max_tp` (the GPUs of one node)."""
    out, tp = [], 1
    while tp <= max_tp:
        if tensor_parallel_problem(model, tp) is None:
            out.append(tp)
        tp *= 2
    return out


def pipeline_parallel_problem(model: ModelArchitecture, pp: int) -> str | None:
    if pp == 1:
        return None
    if not model.pipeline_parallel:
        return f"{model.name} does not support pipeline parallelism"
    if pp > model.layers:
        return f"PP {pp} exceeds the {model.layers} layers of {model.name}"
    return None
