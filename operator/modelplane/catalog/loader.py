"""Reads the catalog's YAML data files (package data) into frozen records, once."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml

from ..api import Precision
from .accelerators import Accelerator
from .architectures import ALL_PRECISIONS, ModelArchitecture


def _data(name: str) -> Any:
    text = resources.files("modelplane.catalog").joinpath("data", name).read_text(encoding="utf-8")
    return yaml.safe_load(text)


def _model(entry: dict[str, Any]) -> ModelArchitecture:
    experts = entry.get("experts") or {}
    mla = entry.get("mla") or {}
    precisions = entry.get("precisions")
    return ModelArchitecture(
        name=entry["name"],
        aliases=tuple(entry.get("aliases", ())),
        family=entry["family"],
        parameters=int(entry["parameters"]),
        active_parameters=entry.get("activeParameters"),
        layers=entry["layers"],
        hidden_size=entry["hiddenSize"],
        attention_heads=entry["attentionHeads"],
        kv_heads=entry["kvHeads"],
        head_dim=entry["headDim"],
        max_context_length=entry["maxContextLength"],
        native_precision=Precision(entry["nativePrecision"]),
        precisions=frozenset(Precision(p) for p in precisions) if precisions else ALL_PRECISIONS,
        pipeline_parallel=bool(entry.get("pipelineParallel", True)),
        kv_lora_rank=mla.get("kvLoraRank"),
        qk_rope_head_dim=mla.get("qkRopeHeadDim"),
        intermediate_size=entry.get("intermediateSize"),
        vocab_size=entry.get("vocabSize"),
        tie_word_embeddings=entry.get("tieWordEmbeddings"),
        qkv_bias=bool(entry.get("qkvBias", False)),
        experts_routed=experts.get("routed"),
        experts_per_token=experts.get("perToken"),
        expert_intermediate_size=experts.get("intermediateSize"),
        source=entry["source"],
        checked=entry.get("checked"),
    )


def _accelerator(entry: dict[str, Any]) -> Accelerator:
    return Accelerator(
        name=entry["name"],
        vendor=entry["vendor"],
        resource=entry["resource"],
        products=tuple(entry["products"]),
        memory_gb=entry["memoryGB"],
        bandwidth_gbps=entry["bandwidthGBps"],
        price_per_hour=str(entry["pricePerHour"]),
        bf16=bool(entry["bf16"]),
        fp8=bool(entry["fp8"]),
        nvlink=bool(entry["nvlink"]),
        source=entry["source"],
    )


@cache
def load_models() -> tuple[ModelArchitecture, ...]:
    return tuple(_model(e) for e in _data("models.yaml")["models"])


@cache
def load_accelerators() -> tuple[Accelerator, ...]:
    return tuple(_accelerator(e) for e in _data("accelerators.yaml")["accelerators"])


@cache
def model_index() -> dict[str, ModelArchitecture]:
    """Lower-cased name and aliases -> architecture."""
    index: dict[str, ModelArchitecture] = {}
    for model in load_models():
        for key in (model.name, *model.aliases):
            index[key.lower()] = model
    return index


@cache
def product_index() -> dict[str, Accelerator]:
    return {p.lower(): acc for acc in load_accelerators() for p in acc.products}
