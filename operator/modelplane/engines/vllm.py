"""vLLM: the OpenAI-compatible server (`vllm serve`), on one node or across nodes with Ray.

Precision: bf16/fp16/fp32 set `--dtype`; fp8 sets `--quantization fp8` (a bf16 checkpoint is
quantized when it loads; an fp8 checkpoint is used as is). int8 and int4 expect a pre-quantized
checkpoint (GPTQ, AWQ, compressed-tensors): vLLM reads the method from the checkpoint's
`quantization_config`, so no flag is passed and the checkpoint must match the precision planned.

Across nodes (a LeaderWorkerSet group), the way vLLM's distributed-serving docs describe it: the
leader starts a Ray head, waits until every GPU of the group has joined, then runs `vllm serve`
with `--tensor-parallel-size` = GPUs per node, `--pipeline-parallel-size` = nodes and the Ray
executor; each worker waits for the head and joins it with `ray start --block`.
"""

from __future__ import annotations

import shlex

from .base import HF_HUB_CACHE_PATH, EngineContext, EngineLaunch
from .common import container, operator_env, precision_flags, volumes
from .user_args import ManagedFlag, check_user_args

RAY_PORT = 6379


MANAGED_FLAGS = (
    ManagedFlag(("--model",), "use spec.model.name or spec.model.source"),
    ManagedFlag(("--served-model-name",), "use spec.model.name"),
    ManagedFlag(("--tensor-parallel-size", "-tp"), "use spec.resources.tensorParallel"),
    ManagedFlag(("--pipeline-parallel-size", "-pp"), "use spec.resources.pipelineParallel"),
    ManagedFlag(("--data-parallel-size", "-dp"), "use spec.replicas (one engine per replica)"),
    ManagedFlag(("--max-model-len",), "use spec.serving.maxContextLength"),
    ManagedFlag(("--max-num-seqs",), "use spec.serving.maxConcurrentSequences"),
    ManagedFlag(
        ("--gpu-memory-utilization",),
        "it is gpuMemoryUtilization in the operator configuration, which the planner sized the replica with",
    ),
    ManagedFlag(("--dtype", "--quantization", "-q"), "use spec.model.precision"),
    ManagedFlag(("--port",), "use spec.serving.port"),
    ManagedFlag(("--host",), "the server listens on all interfaces of its pod"),
    ManagedFlag(("--download-dir",), "downloads go to the operator's model cache"),
    ManagedFlag(("--distributed-executor-backend",), "the operator picks it (Ray across nodes)"),
    ManagedFlag(("--config",), "pass the individual flags in spec.engine.args"),
)
_LOAD_FORMAT = ManagedFlag(("--load-format",), "it follows from spec.model.source (s3:// and gs:// stream)")


def serve_args(ctx: EngineContext) -> list[str]:
    """The arguments of `vllm serve`, the model first (the positional form vLLM asks for)."""
    args = [
        ctx.source.model_ref,
        "--served-model-name",
        ctx.served_model_name,
        "--host",
        "0.0.0.0",
        "--port",
        str(ctx.port),
        "--tensor-parallel-size",
        str(ctx.tensor_parallel),
    ]
    if ctx.pipeline_parallel > 1:
        args += ["--pipeline-parallel-size", str(ctx.pipeline_parallel)]
    if ctx.multi_node:
        args += ["--distributed-executor-backend", "ray"]
    args += ["--max-model-len", str(ctx.max_context_length)]
    if ctx.max_concurrent_sequences is not None:
        args += ["--max-num-seqs", str(ctx.max_concurrent_sequences)]
    args += ["--gpu-memory-utilization", f"{ctx.gpu_memory_utilization:g}"]
    args += precision_flags(ctx.precision)
    if ctx.source.object_store:
        args += ["--load-format", "runai_streamer"]
    elif not ctx.source.local:
        args += ["--download-dir", HF_HUB_CACHE_PATH]
    return args + list(ctx.user_args)


def leader_script(ctx: EngineContext) -> str:
    gpus = ctx.total_gpus
    wait = (
        "import ray, sys; "
        'ray.init(address="auto", logging_level="ERROR"); '
        f'sys.exit(0 if ray.cluster_resources().get("GPU", 0) >= {gpus} else 1)'
    )
    return "\n".join(
        [
            "set -e",
            f"ray start --head --port={RAY_PORT} --disable-usage-stats",
            f"until python3 -c {shlex.quote(wait)}; do",
            f'  echo "waiting for the group\'s {gpus} GPUs to join the Ray cluster"; sleep 5',
            "done",
            f"exec vllm serve {shlex.join(serve_args(ctx))}",
        ]
    )


def worker_script() -> str:
    reach = (
        "import os, socket; "
        f'socket.create_connection((os.environ["LWS_LEADER_ADDRESS"], {RAY_PORT}), timeout=5).close()'
    )
    return "\n".join(
        [
            "set -e",
            f"until python3 -c {shlex.quote(reach)}; do",
            f'  echo "waiting for the Ray head at ${{LWS_LEADER_ADDRESS}}:{RAY_PORT}"; sleep 5',
            "done",
            f'exec ray start --address="${{LWS_LEADER_ADDRESS}}:{RAY_PORT}" --block --disable-usage-stats',
        ]
    )


def build(ctx: EngineContext) -> EngineLaunch:
    managed = [*MANAGED_FLAGS, _LOAD_FORMAT] if ctx.source.object_store else list(MANAGED_FLAGS)
    check_user_args(ctx.user_args, managed, argparse_style=True)
    if ctx.tensor_parallel * ctx.pipeline_parallel > ctx.total_gpus:
        raise ValueError(
            f"tensor parallel {ctx.tensor_parallel} x pipeline parallel {ctx.pipeline_parallel} "
            f"needs more than the replica's {ctx.total_gpus} GPUs"
        )
    env = operator_env(ctx, [("VLLM_NO_USAGE_STATS", "1")])
    if not ctx.multi_node:
        server = container(ctx, ["vllm", "serve"], serve_args(ctx), env, serves_http=True)
        return EngineLaunch(server=server, volumes=volumes(ctx))
    leader = container(ctx, ["/bin/bash", "-c"], [leader_script(ctx)], env, serves_http=True)
    worker = container(ctx, ["/bin/bash", "-c"], [worker_script()], env, serves_http=False)
    return EngineLaunch(server=leader, worker=worker, volumes=volumes(ctx))
