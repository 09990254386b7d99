"""SGLang: `python3 -m sglang.launch_server`, one node, tensor parallel across its GPUs.

Kept simple on purpose: SGLang's own multi-node mode (`--nnodes`, `--dist-init-addr`) and its
pipeline parallelism are not wired up, so a plan that needs them is refused with a SpecError; use
vLLM for those. Object-store sources (s3://, gs://) are refused too. `--mem-fraction-static` gets
the operator's gpuMemoryUtilization (SGLang's share of GPU memory for weights and KV cache, the
closest match to vLLM's budget the planner sized with).
"""

from __future__ import annotations

from .. import api
from .base import HF_HUB_CACHE_PATH, EngineContext, EngineLaunch
from .common import container, operator_env, precision_flags, volumes
from .user_args import ManagedFlag, check_user_args

MANAGED_FLAGS = (
    ManagedFlag(("--model-path", "--model"), "use spec.model.name or spec.model.source"),
    ManagedFlag(("--served-model-name",), "use spec.model.name"),
    ManagedFlag(("--tp-size", "--tp", "--tensor-parallel-size"), "use spec.resources.tensorParallel"),
    ManagedFlag(("--pp-size", "--pipeline-parallel-size"), "use spec.resources.pipelineParallel"),
    ManagedFlag(("--dp-size", "--dp", "--data-parallel-size"), "use spec.replicas (one engine per replica)"),
    ManagedFlag(
        ("--nnodes", "--node-rank", "--dist-init-addr"), "multi-node serving is vLLM's (spec.engine.name)"
    ),
    ManagedFlag(("--context-length",), "use spec.serving.maxContextLength"),
    ManagedFlag(("--max-running-requests",), "use spec.serving.maxConcurrentSequences"),
    ManagedFlag(("--mem-fraction-static",), "it is gpuMemoryUtilization in the operator configuration"),
    ManagedFlag(("--dtype", "--quantization"), "use spec.model.precision"),
    ManagedFlag(("--port",), "use spec.serving.port"),
    ManagedFlag(("--host",), "the server listens on all interfaces of its pod"),
    ManagedFlag(("--download-dir",), "downloads go to the operator's model cache"),
    ManagedFlag(("--config",), "pass the individual flags in spec.engine.args"),
)


def launch_args(ctx: EngineContext) -> list[str]:
    args = [
        "--model-path",
        ctx.source.model_ref,
        "--served-model-name",
        ctx.served_model_name,
        "--host",
        "0.0.0.0",
        "--port",
        str(ctx.port),
        "--tp-size",
        str(ctx.tensor_parallel),
        "--context-length",
        str(ctx.max_context_length),
        "--mem-fraction-static",
        f"{ctx.gpu_memory_utilization:g}",
    ]
    if ctx.max_concurrent_sequences is not None:
        args += ["--max-running-requests", str(ctx.max_concurrent_sequences)]
    args += precision_flags(ctx.precision)
    if not ctx.source.local:
        args += ["--download-dir", HF_HUB_CACHE_PATH]
    return args + list(ctx.user_args)


def build(ctx: EngineContext) -> EngineLaunch:
    if ctx.multi_node:
        raise api.SpecError.single(
            "spec.engine.name",
            f"sglang is served on one node here, but the plan needs {ctx.nodes} nodes per replica; use vllm",
        )
    if ctx.pipeline_parallel > 1:
        raise api.SpecError.single(
            "spec.engine.name",
            "sglang is served with tensor parallelism only; the plan needs pipeline stages",
        )
    if ctx.source.object_store:
        raise api.SpecError.single(
            "spec.model.source", "sglang cannot stream from s3:// or gs://; use hf://, pvc://, oci:// or vllm"
        )
    check_user_args(ctx.user_args, MANAGED_FLAGS, argparse_style=True)
    server = container(
        ctx, ["python3", "-m", "sglang.launch_server"], launch_args(ctx), operator_env(ctx), serves_http=True
    )
    return EngineLaunch(server=server, volumes=volumes(ctx))
