"""Pieces every engine shares: volumes, the environment the operator sets, the container shape."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from .. import api
from .base import (
    HF_HOME_PATH,
    MODEL_CACHE_PATH,
    SHM_PATH,
    TMP_PATH,
    EngineContainer,
    EngineContext,
    env_list,
    http_probes,
)
from .user_args import check_user_env

# /dev/shm is a memory-backed emptyDir: NCCL and the engines' worker processes exchange tensors
# through it. 2 GiB per GPU (16 GiB for 8 GPUs, in line with vLLM's own multi-node example) is
# enough for NCCL's buffers; a memory emptyDir counts against the pod's memory, so it is kept modest.
SHM_GIB_PER_GPU = 2
TMP_SIZE_LIMIT = "4Gi"

# The cache emptyDir must hold the checkpoint, or the kubelet evicts the pod mid-download: it is at
# least the configured size and at least the weights plus 20 % (tokenizer, config, partial files).
CACHE_HEADROOM = 1.2
_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$")
_FACTOR_TO_GIB = {
    None: 2.0**-30, "Ki": 2.0**-20, "Mi": 2.0**-10, "Gi": 1.0, "Ti": 2.0**10, "Pi": 2.0**20,
    "k": 1e3 / 2**30, "M": 1e6 / 2**30, "G": 1e9 / 2**30, "T": 1e12 / 2**30, "P": 1e15 / 2**30,
}  # fmt: skip

# LeaderWorkerSet injects these into every container of a group; a user value would break the group.
LWS_ENV = ("LWS_LEADER_ADDRESS", "LWS_GROUP_SIZE", "LWS_WORKER_INDEX")


def quantity_gib(quantity: str) -> float | None:
    """A Kubernetes storage quantity in GiB; None for forms this does not read (e.g. exponents)."""
    m = _QUANTITY.match(quantity.strip())
    return float(m.group(1)) * _FACTOR_TO_GIB[m.group(2)] if m else None


def cache_size_limit(configured: str, weights_gib: float) -> str:
    needed = math.ceil(weights_gib * CACHE_HEADROOM)
    have = quantity_gib(configured)
    if have is None or have >= needed:
        return configured
    return f"{needed}Gi"


def volumes(ctx: EngineContext) -> tuple[dict[str, Any], ...]:
    cache: dict[str, Any]
    if ctx.model_cache_claim:
        cache = {"name": "model-cache", "persistentVolumeClaim": {"claimName": ctx.model_cache_claim}}
    else:
        limit = cache_size_limit(ctx.model_cache_size_limit, ctx.weights_gib)
        cache = {"name": "model-cache", "emptyDir": {"sizeLimit": limit}}
    out: list[dict[str, Any]] = [
        cache,
        {
            "name": "shm",
            "emptyDir": {"medium": "Memory", "sizeLimit": f"{SHM_GIB_PER_GPU * ctx.gpus_per_node}Gi"},
        },
        {"name": "tmp", "emptyDir": {"sizeLimit": TMP_SIZE_LIMIT}},
    ]
    if ctx.source.volume is not None:
        out.append(dict(ctx.source.volume))
    return tuple(out)


def volume_mounts(ctx: EngineContext) -> tuple[dict[str, Any], ...]:
    out: list[dict[str, Any]] = [
        {"name": "model-cache", "mountPath": MODEL_CACHE_PATH},
        {"name": "shm", "mountPath": SHM_PATH},
        {"name": "tmp", "mountPath": TMP_PATH},
    ]
    if ctx.source.mount is not None:
        out.append(dict(ctx.source.mount))
    return tuple(out)


def operator_env(ctx: EngineContext, extra: Sequence[tuple[str, str]] = ()) -> list[tuple[str, str]]:
    """The environment the operator sets in every engine container."""
    env = [
        ("HOME", TMP_PATH),  # the pod runs as uid 1000, which has no home directory in the images
        ("HF_HOME", HF_HOME_PATH),
    ]
    if ctx.source.local:
        # The weights are on a mounted volume: never reach out to the Hub (data stays where it is).
        env.append(("HF_HUB_OFFLINE", "1"))
    env.extend(extra)
    return env


def container(
    ctx: EngineContext,
    command: Sequence[str],
    args: Sequence[str],
    env: Sequence[tuple[str, str]],
    *,
    serves_http: bool,
) -> EngineContainer:
    """An engine container: the operator's env, then the user's (refused if it overrides ours)."""
    ours = env_list(env)
    reserved = {e["name"] for e in ours} | set(LWS_ENV)
    user = check_user_env(ctx.user_env, reserved)
    env_from: tuple[Mapping[str, Any], ...] = ()
    if ctx.credentials_secret_name:
        env_from = ({"secretRef": {"name": ctx.credentials_secret_name}},)
    probes = http_probes() if serves_http else {}
    return EngineContainer(
        command=tuple(command),
        args=tuple(args),
        env=ours + user,
        env_from=env_from,
        ports=({"name": "http", "containerPort": ctx.port, "protocol": "TCP"},) if serves_http else (),
        startup_probe=probes.get("startup"),
        readiness_probe=probes.get("readiness"),
        liveness_probe=probes.get("liveness"),
        volume_mounts=volume_mounts(ctx),
    )


_DTYPE = {
    api.Precision.FP32: "float32",
    api.Precision.BF16: "bfloat16",
    api.Precision.FP16: "float16",
}


def precision_flags(precision: api.Precision) -> list[str]:
    """`--dtype` / `--quantization` as vLLM and SGLang both spell them."""
    if precision in _DTYPE:
        return ["--dtype", _DTYPE[precision]]
    if precision is api.Precision.FP8:
        return ["--quantization", "fp8"]
    return []  # int8 / int4: a pre-quantized checkpoint (AWQ, GPTQ, ...) says how
