"""Validation errors that name the field and say what is wrong."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError


@dataclass(frozen=True)
class FieldProblem:
    path: str  # e.g. "spec.autoscaling.minReplicas"
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class SpecError(ValueError):
    """A manifest the API cannot accept; every problem names its field path."""

    def __init__(self, problems: Sequence[FieldProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(str(p) for p in self.problems))

    @classmethod
    def single(cls, path: str, message: str) -> SpecError:
        return cls([FieldProblem(path, message)])


def field_error(model: str, field: str, message: str, value: object) -> ValidationError:
    """A validation error that a model-level check pins on one field (by its camelCase name)."""
    detail = InitErrorDetails(type=PydanticCustomError("value_error", message), loc=(field,), input=value)
    return ValidationError.from_exception_data(model, [detail])


def _path(prefix: str, loc: Iterable[int | str]) -> str:
    parts: list[str] = [prefix] if prefix else []
    for item in loc:
        if isinstance(item, int):
            if parts:
                parts[-1] += f"[{item}]"
            else:
                parts.append(f"[{item}]")
        else:
            parts.append(str(item))
    return ".".join(parts)


def from_validation_error(err: ValidationError, prefix: str) -> SpecError:
    problems = []
    for e in err.errors():
        # Pydantic appends the validator's name to unions/after-validators; drop the noise.
        loc = [p for p in e["loc"] if not (isinstance(p, str) and ("[" in p or p.startswith("function-")))]
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown field"
        problems.append(FieldProblem(_path(prefix, loc), msg))
    return SpecError(problems)
