"""Facts: model architectures and accelerator types, from data files inside the package."""

from __future__ import annotations

from ..api import ModelSpec, Precision, SpecError
from .accelerators import Accelerator
from .architectures import ALL_PRECISIONS, ModelArchitecture
from .loader import load_accelerators, load_models, model_index, product_index

__all__ = [
    "ALL_PRECISIONS",
    "Accelerator",
    "ModelArchitecture",
    "accelerator_for_product",
    "all_accelerators",
    "all_models",
    "architecture_from_spec",
    "get_accelerator",
    "get_model",
    "precision_for",
    "resolve_model",
]

# Suffixes GPU Feature Discovery appends to the product: time-slicing/MPS sharing keeps the whole GPU
# type ("-SHARED"); a MIG slice ("-MIG-1g.10gb") is a fraction of one and is not a catalog type.
_SHARED_SUFFIX = "-shared"
_MIG_MARKER = "-mig-"


def get_model(name: str) -> ModelArchitecture | None:
    """The catalog entry for a Hugging Face id or one of its aliases (case-insensitive)."""
    return model_index().get(name.strip().lower())


def all_models() -> list[ModelArchitecture]:
    return list(load_models())


def get_accelerator(name: str) -> Accelerator | None:
    return next((a for a in load_accelerators() if a.name == name), None)


def all_accelerators() -> list[Accelerator]:
    return list(load_accelerators())


def accelerator_for_product(product: str) -> Accelerator | None:
    """The catalog type a node's product label names, or None for products the catalog lacks."""
    key = product.strip().lower()
    if _MIG_MARKER in key:
        return None
    key = key.removesuffix(_SHARED_SUFFIX)
    return product_index().get(key)


def architecture_from_spec(spec: ModelSpec) -> ModelArchitecture:
    """A model outside the catalog, described by `spec.model.architecture`."""
    arch = spec.architecture
    if arch is None:
        raise SpecError.single(
            "spec.model.architecture",
            f"model {spec.name!r} is not in the catalog; describe it with architecture "
            "(parameters, layers, hiddenSize, attentionHeads, kvHeads, headDim)",
        )
    head_dim = arch.head_dim
    if head_dim is None:
        if arch.hidden_size % arch.attention_heads:
            raise SpecError.single(
                "spec.model.architecture.headDim",
                f"hiddenSize {arch.hidden_size} is not divisible by attentionHeads {arch.attention_heads}; "
                "give headDim",
            )
        head_dim = arch.hidden_size // arch.attention_heads
    return ModelArchitecture(
        name=spec.name,
        family="custom",
        parameters=arch.parameters,
        active_parameters=arch.active_parameters,
        layers=arch.layers,
        hidden_size=arch.hidden_size,
        attention_heads=arch.attention_heads,
        kv_heads=arch.kv_heads if arch.kv_heads is not None else arch.attention_heads,
        head_dim=head_dim,
        max_context_length=arch.max_context_length,
        native_precision=Precision.BF16,
        precisions=ALL_PRECISIONS,
        kv_lora_rank=arch.kv_lora_rank,
        qk_rope_head_dim=arch.qk_rope_head_dim,
        source="spec.model.architecture",
    )


def precision_for(spec: ModelSpec, model: ModelArchitecture) -> Precision:
    """The precision the model is served in: the spec's, else the model's native one."""
    return spec.precision if spec.precision is not None else model.native_precision


def resolve_model(spec: ModelSpec) -> ModelArchitecture:
    """The architecture to plan with; an explicit `architecture` in the spec wins over the catalog.

    Raises SpecError at `spec.model.architecture` for an unknown model without one, and at
    `spec.model.precision` for a precision the model cannot be served in.
    """
    model = architecture_from_spec(spec) if spec.architecture is not None else get_model(spec.name)
    if model is None:
        model = architecture_from_spec(spec)  # raises: unknown and undescribed
    precision = precision_for(spec, model)
    if precision not in model.precisions:
        allowed = ", ".join(p.value for p in Precision if p in model.precisions)
        raise SpecError.single(
            "spec.model.precision",
            f"{model.name} cannot be served in {precision.value} (it can: {allowed})",
        )
    return model
