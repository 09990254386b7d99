"""Validation of `spec.engine.args` and `spec.engine.env` against what the operator manages.

The operator sets the flags that the plan decides (parallelism, context length, precision, port,
...). A user arg that sets one of them again would silently contradict the plan, so it is refused
with the field to use instead. Both spellings are checked, `--flag value` and `--flag=value`, and
for engines whose parser is Python's argparse (vLLM, SGLang) also underscores (`--max_model_len`,
which vLLM accepts) and unambiguous abbreviations (`--max-model`, which argparse expands).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .. import api

ARGS_PATH = "spec.engine.args"
ENV_PATH = "spec.engine.env"


@dataclass(frozen=True)
class ManagedFlag:
    names: tuple[str, ...]  # every spelling, e.g. ("--tensor-parallel-size", "-tp")
    hint: str  # what the user should do instead, e.g. "use spec.serving.port"


def _flag_name(arg: str, argparse_style: bool) -> str | None:
    if not arg.startswith("-") or arg in {"-", "--"}:
        return None
    if len(arg) > 1 and (arg[1].isdigit() or arg[1] == "."):  # a negative number is a value
        return None
    name = arg.split("=", 1)[0]
    if argparse_style and name.startswith("--"):
        name = "--" + name[2:].replace("_", "-")
    return name


def check_user_args(args: Sequence[str], managed: Iterable[ManagedFlag], *, argparse_style: bool) -> None:
    """Raise SpecError naming every arg that sets a flag the operator manages."""
    table = {name: flag for flag in managed for name in flag.names}
    problems: list[api.FieldProblem] = []
    for i, arg in enumerate(args):
        name = _flag_name(arg, argparse_style)
        if name is None:
            continue
        hit = table.get(name)
        if hit is None and argparse_style and name.startswith("--") and len(name) > 3:
            # argparse accepts any unambiguous prefix of a long option.
            prefixed = sorted(n for n in table if n.startswith("--") and n.startswith(name))
            if prefixed:
                hit = table[prefixed[0]]
                name = f"{name} (an abbreviation of {prefixed[0]})"
        if hit is not None:
            problems.append(
                api.FieldProblem(f"{ARGS_PATH}[{i}]", f"{name} is set by the operator; {hit.hint}")
            )
    if problems:
        raise api.SpecError(problems)


def check_user_env(env: Sequence[api.EnvVar], reserved: Collection[str]) -> tuple[dict[str, Any], ...]:
    """The user's env as wire dicts; names the operator sets itself are refused."""
    problems = [
        api.FieldProblem(
            f"{ENV_PATH}[{i}].name", f"{var.name} is set by the operator and cannot be overridden"
        )
        for i, var in enumerate(env)
        if var.name in reserved
    ]
    if problems:
        raise api.SpecError(problems)
    return tuple(_env_wire(var) for var in env)


def _env_wire(var: api.EnvVar) -> dict[str, Any]:
    out: dict[str, Any] = {"name": var.name}
    if var.value is not None:
        out["value"] = var.value
    if var.value_from is not None:
        out["valueFrom"] = dict(var.value_from)
    return out
