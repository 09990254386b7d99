"""Memory and time arithmetic of one replica: weights, KV cache per token, usable GPU memory, roofline.

Units: GiB (2^30 bytes) for memory, bytes for per-token KV, 10^9 bytes/s for bandwidth.
"""

from __future__ import annotations

import math

from ..api import Precision
from ..catalog import Accelerator, ModelArchitecture
from ..config import OperatorConfig

GIB = 2**30

# Bytes per weight. INT4 adds one fp16 scale per group of 128 weights (GPTQ/AWQ group size 128).
WEIGHT_BYTES: dict[Precision, float] = {
    Precision.FP32: 4.0,
    Precision.BF16: 2.0,
    Precision.FP16: 2.0,
    Precision.FP8: 1.0,
    Precision.INT8: 1.0,
    Precision.INT4: 0.5 + 2 / 128,
}


def kv_element_bytes(precision: Precision) -> int:
    """The KV cache stays in the activation dtype: fp32 for fp32 models, 16-bit for all others
    (vLLM's kv_cache_dtype "auto"; quantized-weight models compute in bf16/fp16)."""
    return 4 if precision is Precision.FP32 else 2


def weights_bytes(model: ModelArchitecture, precision: Precision) -> float:
    return model.parameters * WEIGHT_BYTES[precision]


def weights_gib(model: ModelArchitecture, precision: Precision) -> float:
    return weights_bytes(model, precision) / GIB


def active_weights_bytes(model: ModelArchitecture, precision: Precision) -> float:
    """Weights read to produce one token: the active parameters of a MoE model, all others'."""
    return model.parameters_per_token * WEIGHT_BYTES[precision]


def kv_heads_per_gpu(model: ModelArchitecture, tensor_parallel: int) -> int:
    """vLLM keeps max(1, kvHeads // TP) KV heads per GPU: heads are replicated when TP > kvHeads.
    MLA caches one latent per token that every TP rank holds in full."""
    if model.uses_mla:
        return 1
    return max(1, model.kv_heads // tensor_parallel)


def kv_bytes_per_token(
    model: ModelArchitecture, precision: Precision, tensor_parallel: int = 1, pipeline_parallel: int = 1
) -> int:
    """KV cache bytes one token occupies on each GPU of a (TP, PP) replica.

    With TP = PP = 1 this is the model's KV per token: 2 x layers x kvHeads x headDim x bytes
    (GQA), or (kvLoraRank + qkRopeHeadDim) x layers x bytes (MLA). PP splits the layers.
    """
    layers = math.ceil(model.layers / pipeline_parallel)
    b = kv_element_bytes(precision)
    if model.uses_mla:
        assert model.kv_lora_rank is not None
        assert model.qk_rope_head_dim is not None
        return (model.kv_lora_rank + model.qk_rope_head_dim) * layers * b
    return 2 * layers * kv_heads_per_gpu(model, tensor_parallel) * model.head_dim * b


def usable_gib(accelerator: Accelerator, config: OperatorConfig) -> float:
    """Per GPU: the engine's share of memory (gpu_memory_utilization) less the runtime reserve."""
    return accelerator.memory_gib * config.gpu_memory_utilization - config.runtime_reserve_gib


def time_per_output_token_ms(
    model: ModelArchitecture, precision: Precision, accelerator: Accelerator, tensor_parallel: int
) -> float:
    """Roofline: each output token reads every (active) weight once. A GPU reads its 1/(TP x PP)
    share at full bandwidth; the PP stages run one after another, so the time is active / TP / BW."""
    return active_weights_bytes(model, precision) / tensor_parallel / (accelerator.bandwidth_gbps * 1e9) * 1e3
