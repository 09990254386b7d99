"""Engines: flags per precision and source, refusals of managed args/env, multi-node start-up."""

from __future__ import annotations

import shlex
from typing import Any

import pytest

from modelplane import api
from modelplane.config import load_config
from modelplane.engines import (
    ENGINES,
    EngineContext,
    build_engine,
    common,
    llama_cpp,
    resolve_source,
    sglang,
    vllm,
)


def spec(**over: Any) -> api.ModelDeploymentSpec:
    raw: dict[str, Any] = {"model": {"name": "meta-llama/Llama-3.1-8B-Instruct", "precision": "bf16"}}
    for key, value in over.items():
        raw[key] = value
    return api.parse_model_deployment_spec(raw)


def plan(**over: Any) -> api.Plan:
    raw: dict[str, Any] = {
        "class": "SLM",
        "accelerator": "nvidia-l4",
        "gpusPerReplica": 1,
        "tensorParallel": 1,
        "pipelineParallel": 1,
        "nodesPerReplica": 1,
        "precision": "bf16",
        "maxContextLength": 8192,
        "weightsGiB": 15.0,
        "kvCacheTokens": 34000,
        "estTimePerOutputTokenMs": 52,
        "costPerReplicaHour": "0.80",
    }
    raw.update(over)
    return api.Plan.model_validate(raw)


MULTI = {
    "class": "LLM",
    "gpusPerReplica": 16,
    "tensorParallel": 8,
    "pipelineParallel": 2,
    "nodesPerReplica": 2,
}


def ctx(s: api.ModelDeploymentSpec | None = None, p: api.Plan | None = None, **config: Any) -> EngineContext:
    return EngineContext.from_spec(s or spec(), p or plan(), load_config(config))


def problems(err: pytest.ExceptionInfo[api.SpecError]) -> list[tuple[str, str]]:
    return [(p.path, p.message) for p in err.value.problems]


# ---------------------------------------------------------------------------------- precision


@pytest.mark.parametrize(
    ("precision", "flags"),
    [
        ("fp32", ["--dtype", "float32"]),
        ("bf16", ["--dtype", "bfloat16"]),
        ("fp16", ["--dtype", "float16"]),
        ("fp8", ["--quantization", "fp8"]),
        ("int8", []),
        ("int4", []),
    ],
)
def test_vllm_precision_flags(precision: str, flags: list[str]) -> None:
    args = vllm.serve_args(ctx(p=plan(precision=precision)))
    assert vllm.precision_flags(api.Precision(precision)) == flags
    for flag in ("--dtype", "--quantization"):
        assert (flag in args) == (flag in flags)
    if flags:
        i = args.index(flags[0])
        assert args[i : i + 2] == flags


def test_vllm_serve_args_follow_the_plan_and_the_spec() -> None:
    s = spec(serving={"maxContextLength": 4096, "maxConcurrentSequences": 48, "port": 9000})
    args = vllm.serve_args(
        ctx(s, plan(gpusPerReplica=4, tensorParallel=4, maxContextLength=4096), gpuMemoryUtilization=0.85)
    )
    assert args[0] == "meta-llama/Llama-3.1-8B-Instruct"  # the model is vllm serve's positional argument
    pairs = dict(zip(args[1::2], args[2::2], strict=False))
    assert pairs["--served-model-name"] == "meta-llama/Llama-3.1-8B-Instruct"
    assert pairs["--tensor-parallel-size"] == "4"
    assert pairs["--max-model-len"] == "4096"
    assert pairs["--max-num-seqs"] == "48"
    assert pairs["--gpu-memory-utilization"] == "0.85"
    assert pairs["--port"] == "9000"
    assert pairs["--host"] == "0.0.0.0"
    assert pairs["--download-dir"] == "/models/huggingface/hub"
    assert "--pipeline-parallel-size" not in args
    assert "--distributed-executor-backend" not in args


def test_vllm_leaves_max_num_seqs_to_the_engine_when_unset() -> None:
    assert "--max-num-seqs" not in vllm.serve_args(ctx())


# ------------------------------------------------------------------------------------ sources


@pytest.mark.parametrize(
    ("source", "model_ref", "scheme"),
    [
        (None, "meta-llama/Llama-3.1-8B-Instruct", "hf"),
        ("hf://org/other-model", "org/other-model", "hf"),
        ("s3://bucket/path/model", "s3://bucket/path/model", "s3"),
        ("gs://bucket/model", "gs://bucket/model", "gs"),
        ("pvc://store/a/b", "/models/pvc/a/b", "pvc"),
        ("pvc://store", "/models/pvc", "pvc"),
        ("oci://registry.example.com/m:1", "/models/oci", "oci"),
    ],
)
def test_source_resolution(source: str | None, model_ref: str, scheme: str) -> None:
    model = api.ModelSpec(name="meta-llama/Llama-3.1-8B-Instruct", source=source)
    loc = resolve_source(model)
    assert (loc.model_ref, loc.scheme) == (model_ref, scheme)
    assert (loc.volume is not None) == (scheme in ("pvc", "oci"))


def test_pvc_source_is_mounted_read_only() -> None:
    loc = resolve_source(api.ModelSpec(name="m", source="pvc://store/models/x"))
    assert loc.volume == {
        "name": "model-source",
        "persistentVolumeClaim": {"claimName": "store", "readOnly": True},
    }
    assert loc.mount == {"name": "model-source", "mountPath": "/models/pvc", "readOnly": True}


def test_oci_source_is_an_image_volume() -> None:
    loc = resolve_source(api.ModelSpec(name="m", source="oci://registry.example.com/models/m:v1"))
    assert loc.volume == {
        "name": "model-source",
        "image": {"reference": "registry.example.com/models/m:v1", "pullPolicy": "IfNotPresent"},
    }
    assert loc.mount is not None
    assert loc.mount["readOnly"] is True


@pytest.mark.parametrize("source", ["pvc://Bad_Claim/x", "pvc://store/../etc", "pvc://store/a/./b"])
def test_bad_pvc_sources_are_refused(source: str) -> None:
    with pytest.raises(api.SpecError) as err:
        resolve_source(api.ModelSpec(name="m", source=source))
    assert problems(err)[0][0] == "spec.model.source"


def test_object_store_sources_stream_and_local_ones_stay_offline() -> None:
    s3 = vllm.serve_args(ctx(spec(model={"name": "m", "source": "s3://b/m", "precision": "bf16"})))
    assert s3[0] == "s3://b/m"
    assert s3[s3.index("--load-format") + 1] == "runai_streamer"
    assert "--download-dir" not in s3
    launch = build_engine(
        spec(model={"name": "m", "source": "pvc://store/m", "precision": "bf16"}), plan(), load_config({})
    )
    env = {e["name"]: e.get("value") for e in launch.server.env}
    assert env["HF_HUB_OFFLINE"] == "1"
    assert "--download-dir" not in launch.server.args


def test_credentials_come_from_the_secret_by_name_only() -> None:
    s = spec(model={"name": "m", "precision": "bf16", "credentialsSecretName": "hf-token"})
    launch = build_engine(s, plan(), load_config({}))
    assert launch.server.env_from == ({"secretRef": {"name": "hf-token"}},)
    assert all("valueFrom" not in e and "TOKEN" not in e["name"] for e in launch.server.env)


# ------------------------------------------------------------------------- user args and env


@pytest.mark.parametrize(
    ("arg", "field"),
    [
        (["--tensor-parallel-size", "2"], "spec.resources.tensorParallel"),
        (["--tensor-parallel-size=2"], "spec.resources.tensorParallel"),
        (["--tensor_parallel_size=2"], "spec.resources.tensorParallel"),
        (["-tp", "2"], "spec.resources.tensorParallel"),
        (["--max-model-len", "4096"], "spec.serving.maxContextLength"),
        (["--max-model", "4096"], "spec.serving.maxContextLength"),  # argparse abbreviation
        (["--model", "x"], "spec.model"),
        (["--port=9000"], "spec.serving.port"),
        (["--quantization", "awq"], "spec.model.precision"),
        (["--dtype=half"], "spec.model.precision"),
        (["--max-num-seqs", "8"], "spec.serving.maxConcurrentSequences"),
        (["--gpu-memory-utilization", "0.5"], "gpuMemoryUtilization"),
    ],
)
def test_vllm_refuses_args_the_operator_manages(arg: list[str], field: str) -> None:
    s = spec(engine={"args": ["--enable-prefix-caching", *arg]})
    with pytest.raises(api.SpecError) as err:
        build_engine(s, plan(), load_config({}))
    [(path, message)] = problems(err)
    assert path == "spec.engine.args[1]"
    assert field in message
    assert "set by the operator" in message


def test_every_refused_arg_is_reported_at_once() -> None:
    s = spec(engine={"args": ["--port", "1", "--enable-prefix-caching", "-pp=2"]})
    with pytest.raises(api.SpecError) as err:
        build_engine(s, plan(), load_config({}))
    assert [p for p, _ in problems(err)] == ["spec.engine.args[0]", "spec.engine.args[3]"]


@pytest.mark.parametrize(
    "args",
    [
        ["--enable-prefix-caching"],
        ["--max-num-batched-tokens", "8192"],
        ["--seed", "-1"],
        ["--load-format", "safetensors"],  # managed only for object-store sources
    ],
)
def test_vllm_accepts_other_args_and_appends_them_last(args: list[str]) -> None:
    launch = build_engine(spec(engine={"args": args}), plan(), load_config({}))
    assert list(launch.server.args[-len(args) :]) == args


def test_load_format_is_managed_for_object_store_sources() -> None:
    s = spec(
        model={"name": "m", "source": "gs://b/m", "precision": "bf16"},
        engine={"args": ["--load-format=auto"]},
    )
    with pytest.raises(api.SpecError, match=r"spec.engine.args\[0\]: --load-format"):
        build_engine(s, plan(), load_config({}))


@pytest.mark.parametrize("name", ["HF_HOME", "HOME", "VLLM_NO_USAGE_STATS", "LWS_LEADER_ADDRESS"])
def test_env_the_operator_sets_is_refused(name: str) -> None:
    s = spec(engine={"env": [{"name": "OK", "value": "1"}, {"name": name, "value": "x"}]})
    with pytest.raises(api.SpecError) as err:
        build_engine(s, plan(), load_config({}))
    assert problems(err)[0][0] == "spec.engine.env[1].name"


def test_user_env_comes_after_the_operators() -> None:
    s = spec(engine={"env": [{"name": "NCCL_DEBUG", "value": "INFO"}]})
    env = build_engine(s, plan(), load_config({})).server.env
    assert env[-1] == {"name": "NCCL_DEBUG", "value": "INFO"}
    assert env[0]["name"] == "HOME"


# ---------------------------------------------------------------------------------- multi-node


def test_vllm_multi_node_runs_ray_and_serves_from_the_leader() -> None:
    launch = build_engine(spec(), plan(**MULTI), load_config({}))
    assert launch.worker is not None
    leader = launch.server.args[0]
    assert launch.server.command == ("/bin/bash", "-c")
    assert "ray start --head --port=6379" in leader
    assert ">= 16" in leader  # waits for every GPU of the group
    exec_line = leader.splitlines()[-1]
    assert exec_line.startswith("exec vllm serve ")
    argv = shlex.split(exec_line)[3:]
    assert argv == vllm.serve_args(ctx(p=plan(**MULTI)))
    pairs = dict(zip(argv[1::2], argv[2::2], strict=False))
    assert pairs["--tensor-parallel-size"] == "8"
    assert pairs["--pipeline-parallel-size"] == "2"
    assert pairs["--distributed-executor-backend"] == "ray"
    worker = launch.worker.args[0]
    assert 'ray start --address="${LWS_LEADER_ADDRESS}:6379" --block' in worker
    assert launch.server.readiness_probe is not None
    assert launch.worker.readiness_probe is None
    assert launch.worker.ports == ()


def test_multi_node_scripts_survive_kubernetes_variable_expansion() -> None:
    # Kubernetes expands $(NAME) in command and args; the scripts must not contain that form.
    s = spec(engine={"args": ["--chat-template", "{{ messages }} it's"]})
    launch = build_engine(s, plan(**MULTI), load_config({}))
    assert launch.worker is not None
    for script in (launch.server.args[0], launch.worker.args[0]):
        assert "$(" not in script
    argv = shlex.split(launch.server.args[0].splitlines()[-1])
    assert argv[-2:] == ["--chat-template", "{{ messages }} it's"]


@pytest.mark.parametrize("engine", ["sglang", "llama-cpp"])
def test_single_node_engines_refuse_multi_node_plans(engine: str) -> None:
    with pytest.raises(api.SpecError) as err:
        build_engine(spec(engine={"name": engine}), plan(**MULTI), load_config({}))
    path, message = problems(err)[0]
    assert path == "spec.engine.name"
    assert "vllm" in message


def test_uneven_gpus_across_nodes_are_a_planner_bug() -> None:
    with pytest.raises(ValueError, match="split evenly"):
        ctx(p=plan(gpusPerReplica=15, tensorParallel=8, pipelineParallel=2, nodesPerReplica=2))


# ---------------------------------------------------------------------------- sglang, llama.cpp


def test_sglang_command() -> None:
    s = spec(engine={"name": "sglang"}, serving={"maxConcurrentSequences": 16})
    launch = build_engine(s, plan(gpusPerReplica=2, tensorParallel=2, precision="fp8"), load_config({}))
    args = list(launch.server.args)
    assert launch.server.command == ("python3", "-m", "sglang.launch_server")
    pairs = dict(zip(args[::2], args[1::2], strict=False))
    assert pairs["--model-path"] == "meta-llama/Llama-3.1-8B-Instruct"
    assert pairs["--tp-size"] == "2"
    assert pairs["--context-length"] == "8192"
    assert pairs["--max-running-requests"] == "16"
    assert pairs["--quantization"] == "fp8"
    assert sglang.precision_flags(api.Precision.INT4) == []


@pytest.mark.parametrize("arg", ["--tp", "--tp-size=2", "--context-length", "--nnodes"])
def test_sglang_refuses_managed_args(arg: str) -> None:
    with pytest.raises(api.SpecError, match=r"spec.engine.args\[0\]"):
        build_engine(spec(engine={"name": "sglang", "args": [arg, "2"]}), plan(), load_config({}))


def test_sglang_refuses_object_store_sources() -> None:
    s = spec(model={"name": "m", "source": "s3://b/m", "precision": "bf16"}, engine={"name": "sglang"})
    with pytest.raises(api.SpecError, match=r"spec\.model\.source"):
        build_engine(s, plan(), load_config({}))


def test_llama_cpp_slots_share_the_context() -> None:
    s = spec(
        model={"name": "m", "source": "hf://org/m-GGUF:Q4_K_M", "precision": "int4"},
        engine={"name": "llama-cpp"},
        serving={"maxContextLength": 4096, "maxConcurrentSequences": 4},
    )
    args = list(build_engine(s, plan(maxContextLength=4096), load_config({})).server.args)
    pairs = dict(zip(args[::2], args[1::2], strict=False))
    assert pairs["-hf"] == "org/m-GGUF:Q4_K_M"
    assert (pairs["-np"], pairs["-c"]) == ("4", "16384")
    assert pairs["-ngl"] == "999"
    assert llama_cpp.server_args(ctx(p=plan(maxContextLength=4096)))[-2:] == ["-c", "4096"]


@pytest.mark.parametrize(
    ("source", "ok"),
    [
        ("pvc://store/m/model-q4.gguf", True),
        ("pvc://store/m", False),
        ("oci://r/m:1", False),
        ("s3://b/m", False),
    ],
)
def test_llama_cpp_sources(source: str, ok: bool) -> None:
    s = spec(model={"name": "m", "source": source, "precision": "int4"}, engine={"name": "llama-cpp"})
    if ok:
        args = build_engine(s, plan(), load_config({})).server.args
        assert args[:2] == ("-m", "/models/pvc/m/model-q4.gguf")
    else:
        with pytest.raises(api.SpecError, match=r"spec\.model\.source"):
            build_engine(s, plan(), load_config({}))


def test_llama_cpp_refuses_managed_args_without_argparse_abbreviations() -> None:
    with pytest.raises(api.SpecError, match=r"args\[0\]: -c is set"):
        build_engine(spec(engine={"name": "llama-cpp", "args": ["-c", "1"]}), plan(), load_config({}))
    args = build_engine(
        spec(engine={"name": "llama-cpp", "args": ["--ctx", "x"]}), plan(), load_config({})
    ).server.args
    assert args[-2:] == ("--ctx", "x")


def test_registry_holds_every_engine_of_the_api() -> None:
    assert set(ENGINES) == {e.value for e in api.EngineName}


# ------------------------------------------------------------------------------------ volumes


@pytest.mark.parametrize(
    ("quantity", "gib"),
    [
        ("200Gi", 200.0),
        ("1Ti", 1024.0),
        ("512Mi", 0.5),
        ("100G", 100e9 / 2**30),
        ("1e3", None),
        ("lots", None),
    ],
)
def test_quantity_gib(quantity: str, gib: float | None) -> None:
    if gib is None:
        assert common.quantity_gib(quantity) is None
    else:
        assert common.quantity_gib(quantity) == pytest.approx(gib)


@pytest.mark.parametrize(
    ("configured", "weights", "limit"),
    [("200Gi", 15.0, "200Gi"), ("200Gi", 756.0, "908Gi"), ("2Ti", 756.0, "2Ti"), ("1e12", 756.0, "1e12")],
)
def test_cache_holds_the_checkpoint(configured: str, weights: float, limit: str) -> None:
    assert common.cache_size_limit(configured, weights) == limit


def test_shm_grows_with_the_gpus_of_a_pod() -> None:
    vols = {v["name"]: v for v in build_engine(spec(), plan(**MULTI), load_config({})).volumes}
    assert vols["shm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "16Gi"}


def test_configured_cache_claim_replaces_the_empty_dir() -> None:
    vols = {
        v["name"]: v
        for v in build_engine(
            spec(), plan(), load_config({"modelCache": {"persistentVolumeClaim": "c"}})
        ).volumes
    }
    assert vols["model-cache"] == {"name": "model-cache", "persistentVolumeClaim": {"claimName": "c"}}
