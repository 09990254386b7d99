"""The catalogs: model architectures and accelerator types."""

from __future__ import annotations

from decimal import Decimal

import pytest

from modelplane import api, catalog
from modelplane.catalog import ModelArchitecture

GIB = 2**30


def formula_parameters(m: ModelArchitecture) -> tuple[int, int]:
    """Total and per-token parameters from the config fields (docs/sizing.md), independent of the data."""
    assert m.intermediate_size is not None or m.expert_intermediate_size is not None
    assert m.vocab_size is not None
    h, d = m.hidden_size, m.head_dim
    attn = h * m.attention_heads * d + 2 * h * m.kv_heads * d + m.attention_heads * d * h
    if m.qkv_bias:
        attn += m.attention_heads * d + 2 * m.kv_heads * d
    if m.experts_routed:
        assert m.expert_intermediate_size is not None
        assert m.experts_per_token is not None
        ffn = m.experts_routed * 3 * h * m.expert_intermediate_size + h * m.experts_routed
        active_ffn = m.experts_per_token * 3 * h * m.expert_intermediate_size + h * m.experts_routed
    else:
        assert m.intermediate_size is not None
        ffn = active_ffn = 3 * h * m.intermediate_size
    embeddings = m.vocab_size * h * (1 if m.tie_word_embeddings else 2)
    total = m.layers * (attn + ffn + 2 * h) + embeddings + h
    active = m.layers * (attn + active_ffn + 2 * h) + embeddings + h
    return total, active


def spec(name: str, precision: str | None = None, **architecture: int) -> api.ModelSpec:
    return api.ModelSpec.model_validate(
        {"name": name, "precision": precision, "architecture": architecture or None}
    )


def test_catalog_holds_the_popular_open_models() -> None:
    names = {m.name for m in catalog.all_models()}
    assert len(names) >= 25
    for required in (
        "meta-llama/Llama-3.2-1B-Instruct",
        "meta-llama/Llama-3.1-405B-Instruct",
        "meta-llama/Llama-3.3-70B-Instruct",
        "Qwen/Qwen2.5-7B-Instruct",
        "Qwen/Qwen3-30B-A3B",
        "Qwen/Qwen3-235B-A22B",
        "mistralai/Mistral-7B-Instruct-v0.3",
        "mistralai/Mixtral-8x7B-Instruct-v0.1",
        "microsoft/Phi-3-mini-4k-instruct",
        "microsoft/Phi-4-mini-instruct",
        "microsoft/phi-4",
        "google/gemma-2-9b-it",
        "google/gemma-3-27b-it",
        "deepseek-ai/DeepSeek-V3",
    ):
        assert required in names


def test_every_entry_names_its_source_and_keys_do_not_collide() -> None:
    seen: dict[str, str] = {}
    for m in catalog.all_models():
        assert m.source.startswith("https://huggingface.co/")
        assert m.source.endswith("config.json")
        for key in (m.name, *m.aliases):
            assert key.lower() not in seen, f"{key} is claimed by {seen.get(key.lower())} and {m.name}"
            seen[key.lower()] = m.name
    for a in catalog.all_accelerators():
        assert a.source


def test_llama_8b_weights_in_bf16_are_about_15_gib() -> None:
    m = catalog.get_model("meta-llama/Llama-3.1-8B-Instruct")
    assert m is not None
    assert m.parameters * 2 / GIB == pytest.approx(14.96, abs=0.01)


@pytest.mark.parametrize("model", catalog.all_models(), ids=lambda m: m.name)
def test_parameter_counts_agree_with_the_config_formula(model: ModelArchitecture) -> None:
    if model.uses_mla:  # DeepSeek-V3 carries its published totals; the formula does not model MLA
        assert model.parameters == 671_000_000_000
        assert model.active_parameters == 37_000_000_000
        return
    total, active = formula_parameters(model)
    assert model.parameters == pytest.approx(total, rel=0.01)
    assert model.parameters_per_token == pytest.approx(active, rel=0.01)


@pytest.mark.parametrize(
    ("name", "total_b", "active_b"),
    [
        ("meta-llama/Llama-3.1-8B-Instruct", 8.03, 8.03),
        ("meta-llama/Llama-3.1-70B-Instruct", 70.55, 70.55),
        ("meta-llama/Llama-3.1-405B-Instruct", 405.85, 405.85),
        ("mistralai/Mixtral-8x7B-Instruct-v0.1", 46.7, 12.9),
        ("Qwen/Qwen3-235B-A22B", 235.1, 22.2),
        ("Qwen/Qwen3-30B-A3B", 30.5, 3.3),
    ],
)
def test_parameter_counts_match_published_totals(name: str, total_b: float, active_b: float) -> None:
    m = catalog.get_model(name)
    assert m is not None
    assert m.parameters / 1e9 == pytest.approx(total_b, rel=0.005)
    assert m.parameters_per_token / 1e9 == pytest.approx(active_b, rel=0.02)


@pytest.mark.parametrize(
    ("name", "head_dim", "derived"),
    [("Qwen/Qwen3-0.6B", 128, 64), ("google/gemma-2-9b-it", 256, 224), ("google/gemma-3-4b-it", 256, 320)],
)
def test_head_dim_is_explicit_not_hidden_over_heads(name: str, head_dim: int, derived: int) -> None:
    m = catalog.get_model(name)
    assert m is not None
    assert m.head_dim == head_dim
    assert m.hidden_size // m.attention_heads == derived


def test_base_and_instruct_ids_are_aliases_of_one_architecture() -> None:
    instruct = catalog.get_model("meta-llama/Llama-3.1-8B-Instruct")
    assert instruct is not None
    assert catalog.get_model("meta-llama/Llama-3.1-8B") is instruct
    assert catalog.get_model("META-LLAMA/llama-3.1-8b-instruct") is instruct
    assert catalog.get_model("Qwen/Qwen2.5-7B") is catalog.get_model("Qwen/Qwen2.5-7B-Instruct")
    assert catalog.get_model("deepseek-ai/DeepSeek-R1") is catalog.get_model("deepseek-ai/DeepSeek-V3")
    assert catalog.get_model("acme/never-heard-of-it") is None


def test_deepseek_v3_is_fp8_native_with_mla() -> None:
    m = catalog.get_model("deepseek-ai/DeepSeek-V3")
    assert m is not None
    assert m.native_precision is api.Precision.FP8
    assert (m.kv_lora_rank, m.qk_rope_head_dim, m.layers) == (512, 64, 61)
    assert m.uses_mla
    assert m.is_moe
    assert catalog.resolve_model(spec("deepseek-ai/DeepSeek-V3")) is m
    with pytest.raises(api.SpecError) as err:
        catalog.resolve_model(spec("deepseek-ai/DeepSeek-V3", "fp32"))
    assert err.value.problems[0].path == "spec.model.precision"
    assert "fp32" in err.value.problems[0].message


def test_precision_rules() -> None:
    with pytest.raises(api.SpecError) as err:
        catalog.resolve_model(spec("google/gemma-2-9b-it", "fp16"))
    assert err.value.problems[0].path == "spec.model.precision"
    for p in ("fp32", "bf16", "fp16", "fp8", "int8", "int4"):
        catalog.resolve_model(spec("meta-llama/Llama-3.1-8B-Instruct", p))
    llama = catalog.get_model("meta-llama/Llama-3.1-8B-Instruct")
    assert llama is not None
    assert catalog.precision_for(spec(llama.name), llama) is api.Precision.BF16
    assert catalog.precision_for(spec(llama.name, "int4"), llama) is api.Precision.INT4


def test_unknown_model_needs_an_architecture() -> None:
    with pytest.raises(api.SpecError) as err:
        catalog.resolve_model(spec("acme/custom-7b"))
    assert err.value.problems[0].path == "spec.model.architecture"
    m = catalog.resolve_model(
        spec("acme/custom-7b", parameters=7_000_000_000, layers=32, hiddenSize=4096, attentionHeads=32)
    )
    assert (m.kv_heads, m.head_dim, m.native_precision) == (32, 128, api.Precision.BF16)
    with pytest.raises(api.SpecError) as err:
        catalog.resolve_model(
            spec("acme/odd", parameters=1_000_000, layers=2, hiddenSize=100, attentionHeads=3)
        )
    assert err.value.problems[0].path == "spec.model.architecture.headDim"


def test_accelerators() -> None:
    names = [a.name for a in catalog.all_accelerators()]
    assert names == [
        "nvidia-t4", "nvidia-l4", "nvidia-a10g", "nvidia-l40s", "nvidia-a100-40gb", "nvidia-a100-80gb",
        "nvidia-h100-80gb", "nvidia-h200", "nvidia-b200", "amd-mi300x",
    ]  # fmt: skip
    for a in catalog.all_accelerators():
        assert Decimal(a.price_per_hour) > 0
        assert a.memory_gib == pytest.approx(a.memory_gb * 1e9 / GIB)
        assert a.resource == ("amd.com/gpu" if a.vendor == "amd" else "nvidia.com/gpu")
    t4, l4, a100 = (catalog.get_accelerator(n) for n in ("nvidia-t4", "nvidia-l4", "nvidia-a100-80gb"))
    assert t4 is not None
    assert l4 is not None
    assert a100 is not None
    assert not t4.supports(api.Precision.BF16)
    assert t4.supports(api.Precision.FP16)
    assert l4.supports(api.Precision.FP8)
    assert not a100.supports(api.Precision.FP8)
    assert catalog.get_accelerator("nvidia-h100-80gb") is not None
    assert catalog.get_accelerator("nvidia-h100") is None


@pytest.mark.parametrize(
    ("product", "name"),
    [
        ("Tesla-T4", "nvidia-t4"),
        ("NVIDIA-L4", "nvidia-l4"),
        ("NVIDIA-A10G", "nvidia-a10g"),
        ("NVIDIA-L40S", "nvidia-l40s"),
        ("NVIDIA-A100-SXM4-40GB", "nvidia-a100-40gb"),
        ("NVIDIA-A100-SXM4-80GB", "nvidia-a100-80gb"),
        ("NVIDIA-A100-80GB-PCIe", "nvidia-a100-80gb"),
        ("NVIDIA-H100-80GB-HBM3", "nvidia-h100-80gb"),
        ("NVIDIA-H200", "nvidia-h200"),
        ("NVIDIA-B200", "nvidia-b200"),
        ("AMD_Instinct_MI300X_OAM", "amd-mi300x"),
        ("NVIDIA-H100-80GB-HBM3-SHARED", "nvidia-h100-80gb"),
        ("NVIDIA-A100-SXM4-40GB-MIG-1g.5gb", None),
        ("NVIDIA-GeForce-RTX-4090", None),
    ],
)
def test_products_identify_accelerators(product: str, name: str | None) -> None:
    acc = catalog.accelerator_for_product(product)
    assert (acc.name if acc else None) == name
