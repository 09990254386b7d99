"""Engine name → builder: adding an engine is one `EngineContext -> EngineLaunch` function and one line."""

from __future__ import annotations

from collections.abc import Callable

from .. import api
from ..config import OperatorConfig
from . import llama_cpp, sglang, vllm
from .base import EngineContext, EngineLaunch

EngineBuilder = Callable[[EngineContext], EngineLaunch]

ENGINES: dict[str, EngineBuilder] = {
    api.EngineName.VLLM.value: vllm.build,
    api.EngineName.SGLANG.value: sglang.build,
    api.EngineName.LLAMA_CPP.value: llama_cpp.build,
}


def build_engine(spec: api.ModelDeploymentSpec, plan: api.Plan, config: OperatorConfig) -> EngineLaunch:
    """The engine containers for a deployment; SpecError if the spec asks for what the engine cannot do."""
    name = spec.engine.name.value
    builder = ENGINES.get(name)
    if builder is None:
        raise api.SpecError.single(
            "spec.engine.name", f"unknown engine {name!r}; known: {', '.join(sorted(ENGINES))}"
        )
    return builder(EngineContext.from_spec(spec, plan, config))
