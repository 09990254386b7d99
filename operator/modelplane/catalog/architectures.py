"""Model architectures: what the planner needs to size a model, from its own config.json."""

from __future__ import annotations

from dataclasses import dataclass

from ..api import Precision

ALL_PRECISIONS = frozenset(Precision)


@dataclass(frozen=True)
class ModelArchitecture:
    name: str  # Hugging Face id, or the spec's model name for models outside the catalog
    family: str
    parameters: int  # total
    layers: int
    hidden_size: int
    attention_heads: int
    kv_heads: int
    head_dim: int  # explicit: Qwen3 and Gemma do not have hidden_size / attention_heads
    max_context_length: int  # the model's own (config max_position_embeddings)
    native_precision: Precision
    precisions: frozenset[Precision]  # the precisions the model may be served in
    source: str
    aliases: tuple[str, ...] = ()
    active_parameters: int | None = None  # per token, MoE only
    kv_lora_rank: int | None = None  # MLA (DeepSeek-V2/V3): the cached latent rank
    qk_rope_head_dim: int | None = None  # MLA: the decoupled RoPE key, cached beside the latent
    pipeline_parallel: bool = True
    intermediate_size: int | None = None
    vocab_size: int | None = None
    tie_word_embeddings: bool | None = None
    qkv_bias: bool = False
    experts_routed: int | None = None
    experts_per_token: int | None = None
    expert_intermediate_size: int | None = None
    checked: str | None = None  # what was cross-checked beyond the source, when anything was

    @property
    def is_moe(self) -> bool:
        return self.active_parameters is not None and self.active_parameters < self.parameters

    @property
    def uses_mla(self) -> bool:
        return self.kv_lora_rank is not None and self.qk_rope_head_dim is not None

    @property
    def parameters_per_token(self) -> int:
        """Weights read for one output token: the active parameters for MoE, all of them otherwise."""
        return self.active_parameters if self.active_parameters is not None else self.parameters
