"""Manifest dicts in, typed objects out; errors name the field path."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from .errors import SpecError, from_validation_error
from .model_deployment import ModelDeployment, ModelDeploymentSpec
from .residency_policy import ResidencyPolicy


def parse_model_deployment(obj: Mapping[str, Any]) -> ModelDeployment:
    try:
        return ModelDeployment.model_validate(dict(obj))
    except ValidationError as err:
        raise from_validation_error(err, "") from None


def parse_model_deployment_spec(spec: Mapping[str, Any]) -> ModelDeploymentSpec:
    """The spec alone, as a kopf handler receives it; paths start at `spec`."""
    try:
        return ModelDeploymentSpec.model_validate(dict(spec))
    except ValidationError as err:
        raise from_validation_error(err, "spec") from None


def parse_residency_policy(obj: Mapping[str, Any]) -> ResidencyPolicy:
    try:
        return ResidencyPolicy.model_validate(dict(obj))
    except ValidationError as err:
        raise from_validation_error(err, "") from None


def parse_manifest(obj: Mapping[str, Any]) -> ModelDeployment | ResidencyPolicy:
    """One document of a manifest file, by its kind."""
    kind = obj.get("kind")
    if kind == "ModelDeployment":
        return parse_model_deployment(obj)
    if kind == "ResidencyPolicy":
        return parse_residency_policy(obj)
    raise SpecError.single("kind", f"expected ModelDeployment or ResidencyPolicy, got {kind!r}")
