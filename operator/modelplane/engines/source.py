"""Where the weights come from: `spec.model.source` turned into what the engine loads and what the pod mounts.

- no source, or `hf://org/name`: a Hugging Face id, downloaded into the model cache;
- `pvc://claim/path`: the PersistentVolumeClaim mounted read-only at /models/pvc, the model at
  /models/pvc/path;
- `oci://registry/repo:tag`: a Kubernetes image volume (Kubernetes >= 1.33) mounted read-only at
  /models/oci, the model at its root;
- `s3://bucket/path`, `gs://bucket/path`: streamed from the object store by the engine (vLLM's
  Run:ai streamer); credentials come from the Secret named in `spec.model.credentialsSecretName`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .. import api

SOURCE_PATH = "spec.model.source"
PVC_MOUNT_PATH = "/models/pvc"
OCI_MOUNT_PATH = "/models/oci"
SOURCE_VOLUME = "model-source"
_CLAIM_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@dataclass(frozen=True)
class ModelLocation:
    scheme: str  # hf | s3 | gs | pvc | oci
    model_ref: str  # what the engine loads: a Hugging Face id, a local path or an object-store URI
    volume: Mapping[str, Any] | None = None  # the pod volume holding the weights, if any
    mount: Mapping[str, Any] | None = None

    @property
    def local(self) -> bool:
        """The weights are on a mounted volume: nothing to download."""
        return self.scheme in ("pvc", "oci")

    @property
    def object_store(self) -> bool:
        return self.scheme in ("s3", "gs")


def resolve_source(model: api.ModelSpec) -> ModelLocation:
    if model.source is None:
        return ModelLocation(scheme="hf", model_ref=model.name)
    scheme, _, rest = model.source.partition("://")
    if not rest:
        raise api.SpecError.single(SOURCE_PATH, f"{model.source!r} names nothing after {scheme}://")
    if scheme == "hf":
        return ModelLocation(scheme="hf", model_ref=rest.strip("/"))
    if scheme in ("s3", "gs"):
        return ModelLocation(scheme=scheme, model_ref=model.source)
    if scheme == "pvc":
        return _pvc(model.source, rest)
    if scheme == "oci":
        return ModelLocation(
            scheme="oci",
            model_ref=OCI_MOUNT_PATH,
            volume={"name": SOURCE_VOLUME, "image": {"reference": rest, "pullPolicy": "IfNotPresent"}},
            mount={"name": SOURCE_VOLUME, "mountPath": OCI_MOUNT_PATH, "readOnly": True},
        )
    raise api.SpecError.single(SOURCE_PATH, f"unsupported scheme {scheme!r}")


def _pvc(source: str, rest: str) -> ModelLocation:
    claim, _, path = rest.partition("/")
    if not _CLAIM_NAME.match(claim) or len(claim) > 253:
        raise api.SpecError.single(
            SOURCE_PATH, f"{claim!r} in {source!r} is not a valid PersistentVolumeClaim name"
        )
    parts = [p for p in path.split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise api.SpecError.single(SOURCE_PATH, f"the path in {source!r} must not contain '.' or '..'")
    model_ref = "/".join([PVC_MOUNT_PATH, *parts])
    return ModelLocation(
        scheme="pvc",
        model_ref=model_ref,
        volume={"name": SOURCE_VOLUME, "persistentVolumeClaim": {"claimName": claim, "readOnly": True}},
        mount={"name": SOURCE_VOLUME, "mountPath": PVC_MOUNT_PATH, "readOnly": True},
    )
