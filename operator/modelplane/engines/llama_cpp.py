"""llama.cpp: `llama-server` with a GGUF model, every layer on the GPUs of one node.

- `hf://org/repo[:quant]` (or no source) → `-hf org/repo[:quant]`, downloaded into LLAMA_CACHE on
  the model cache volume; `pvc://claim/path/model.gguf` → `-m /models/pvc/path/model.gguf`.
  s3://, gs:// and oci:// are refused: llama-server loads one local file or a Hub repo.
- The precision is the GGUF file's own quantization: `spec.model.precision` sizes the replica, it
  does not convert the weights, so no flag is passed for it.
- `-c` is the context of all slots together: with `maxConcurrentSequences` = N slots (`-np N`),
  `-c` = N x maxContextLength so that each slot holds a full-length sequence. Unset, one slot.
- Layers are split across the node's GPUs (`-ngl 999` offloads all of them); no multi-node mode.
"""

from __future__ import annotations

from .. import api
from .base import MODEL_CACHE_PATH, EngineContext, EngineLaunch
from .common import container, operator_env, volumes
from .user_args import ManagedFlag, check_user_args

LLAMA_CACHE_PATH = f"{MODEL_CACHE_PATH}/llama.cpp"

MANAGED_FLAGS = (
    ManagedFlag(("-m", "--model", "-hf", "-hfr", "--hf-repo", "-mu", "--model-url"), "use spec.model.source"),
    ManagedFlag(("-a", "--alias"), "use spec.model.name"),
    ManagedFlag(("-c", "--ctx-size"), "use spec.serving.maxContextLength"),
    ManagedFlag(("-np", "--parallel"), "use spec.serving.maxConcurrentSequences"),
    ManagedFlag(("-ngl", "--gpu-layers", "--n-gpu-layers"), "every layer is offloaded to the GPUs"),
    ManagedFlag(("--port",), "use spec.serving.port"),
    ManagedFlag(("--host",), "the server listens on all interfaces of its pod"),
)


def server_args(ctx: EngineContext) -> list[str]:
    slots = ctx.max_concurrent_sequences or 1
    model = ["-hf" if ctx.source.scheme == "hf" else "-m", ctx.source.model_ref]
    return [
        *model,
        "--alias",
        ctx.served_model_name,
        "--host",
        "0.0.0.0",
        "--port",
        str(ctx.port),
        "-ngl",
        "999",
        "-np",
        str(slots),
        "-c",
        str(ctx.max_context_length * slots),
        *ctx.user_args,
    ]


def build(ctx: EngineContext) -> EngineLaunch:
    if ctx.multi_node:
        raise api.SpecError.single(
            "spec.engine.name",
            f"llama-cpp serves on one node, but the plan needs {ctx.nodes} nodes per replica; use vllm",
        )
    if ctx.source.scheme not in ("hf", "pvc"):
        raise api.SpecError.single(
            "spec.model.source",
            "llama-cpp loads a GGUF file from hf:// or pvc://; s3://, gs:// and oci:// are not supported",
        )
    if ctx.source.scheme == "pvc" and not ctx.source.model_ref.endswith(".gguf"):
        raise api.SpecError.single(
            "spec.model.source", "llama-cpp needs the path of a .gguf file on the claim"
        )
    check_user_args(ctx.user_args, MANAGED_FLAGS, argparse_style=False)
    env = operator_env(ctx, [("LLAMA_CACHE", LLAMA_CACHE_PATH)])
    server = container(ctx, ["/app/llama-server"], server_args(ctx), env, serves_http=True)
    return EngineLaunch(server=server, volumes=volumes(ctx))
