"""Serving engines: container command, args, env, probes and volumes per engine (vLLM first).

`build_engine(spec, plan, config)` returns an `EngineLaunch`: the server container (the leader
across nodes), the worker container when a replica spans nodes, and the pod volumes they mount.
"""

from .base import (
    HEALTH_PATH,
    MODEL_CACHE_PATH,
    EngineContainer,
    EngineContext,
    EngineLaunch,
)
from .registry import ENGINES, EngineBuilder, build_engine
from .source import ModelLocation, resolve_source
from .user_args import ManagedFlag, check_user_args, check_user_env

__all__ = [
    "ENGINES",
    "HEALTH_PATH",
    "MODEL_CACHE_PATH",
    "EngineBuilder",
    "EngineContainer",
    "EngineContext",
    "EngineLaunch",
    "ManagedFlag",
    "ModelLocation",
    "build_engine",
    "check_user_args",
    "check_user_env",
    "resolve_source",
]
