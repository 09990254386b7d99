"""A stable content hash of a desired child, so the operator can skip applying what did not change."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from .labels import SPEC_HASH_ANNOTATION


def spec_hash(obj: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON (sorted keys, no spaces), without its own spec-hash annotation."""
    body = copy.deepcopy(dict(obj))
    annotations = body.get("metadata", {}).get("annotations")
    if isinstance(annotations, dict):
        annotations.pop(SPEC_HASH_ANNOTATION, None)
        if not annotations:
            del body["metadata"]["annotations"]
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def with_spec_hash(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the object carrying its spec hash in `metadata.annotations`."""
    out = copy.deepcopy(dict(obj))
    digest = spec_hash(out)
    out.setdefault("metadata", {}).setdefault("annotations", {})[SPEC_HASH_ANNOTATION] = digest
    return out
