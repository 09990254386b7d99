"""Golden files: tests/unit/golden/<case>/input.yaml (a ModelDeployment, a plan, the placement) →
expected.yaml (the children). `UPDATE_GOLDEN=1 pytest tests/unit/test_manifests_golden.py` rewrites
the expected files; review the diff by eye before committing it.

Also here: the walk over every builder path asserting that each pod template carries exactly the
required node affinity it was given (no path may build a pod without the residency policy).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelplane import api
from modelplane.config import load_config
from modelplane.manifests import SPEC_HASH_ANNOTATION, ChildInputs, build_children, spec_hash

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p.name for p in GOLDEN.iterdir() if (p / "input.yaml").is_file())


class _Dumper(yaml.SafeDumper):
    """Plain YAML: no anchors, multi-line strings (the start-up scripts) as literal blocks."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str)


def dump(children: list[dict[str, Any]]) -> str:
    return yaml.dump_all(children, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=100)


def load_inputs(raw: Mapping[str, Any]) -> ChildInputs:
    return ChildInputs(
        deployment=api.parse_model_deployment(raw["deployment"]),
        plan=api.Plan.model_validate(raw["plan"]),
        config=load_config(raw.get("config")),
        node_affinity=raw["nodeAffinity"],
        tolerations=raw.get("tolerations", []),
        gpu_resource=raw["gpuResource"],
        replicas=raw["replicas"],
    )


def read_case(case: str) -> dict[str, Any]:
    raw = yaml.safe_load((GOLDEN / case / "input.yaml").read_text())
    assert isinstance(raw, dict)
    return raw


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str) -> None:
    children = build_children(load_inputs(read_case(case)))
    text = dump(children)
    expected = GOLDEN / case / "expected.yaml"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        expected.write_text(text)
    assert expected.is_file(), f"no {expected}; run with UPDATE_GOLDEN=1 and review it"
    assert text == expected.read_text(), (
        f"{case}: children differ from {expected} (UPDATE_GOLDEN=1 to accept)"
    )


def test_golden_cases_cover_every_kind_and_engine() -> None:
    kinds: set[str] = set()
    engines: set[str] = set()
    schemes: set[str] = set()
    for case in CASES:
        raw = read_case(case)
        spec = raw["deployment"]["spec"]
        engines.add(spec.get("engine", {}).get("name", "vllm"))
        schemes.add(spec["model"].get("source", "hf://").split("://")[0])
        kinds |= {c["kind"] for c in build_children(load_inputs(raw))}
    assert kinds == {"Deployment", "LeaderWorkerSet", "Service"}
    assert engines == {"vllm", "sglang", "llama-cpp"}
    assert schemes == set(api.SOURCE_SCHEMES) - {"gs"} | {"hf"}


# ------------------------------------------------------------------ every pod keeps the affinity


def pod_templates(child: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every pod template inside a child, wherever its kind keeps them."""
    spec = child.get("spec", {})
    if "template" in spec:
        yield spec["template"]
    lwt = spec.get("leaderWorkerTemplate")
    if lwt is not None:
        if "leaderTemplate" in lwt:
            yield lwt["leaderTemplate"]
        yield lwt["workerTemplate"]


def variants() -> Iterator[tuple[str, dict[str, Any]]]:
    """The golden cases, and each one again with every source scheme the engine takes, and as LWS."""
    sources = {
        "hf": "hf://org/model",
        "s3": "s3://bucket/model",
        "gs": "gs://bucket/model",
        "pvc": "pvc://claim/dir/model.gguf",
        "oci": "oci://registry.example.com/model:1",
    }
    takes = {
        "vllm": set(sources),
        "sglang": {"hf", "pvc", "oci"},
        "llama-cpp": {"hf", "pvc"},
    }
    for case in CASES:
        raw = read_case(case)
        yield case, raw
        engine = raw["deployment"]["spec"].get("engine", {}).get("name", "vllm")
        for scheme in sorted(takes[engine]):
            v = copy.deepcopy(raw)
            v["deployment"]["spec"]["model"]["source"] = sources[scheme]
            yield f"{case}+{scheme}", v
        if engine == "vllm" and raw["plan"]["nodesPerReplica"] == 1:
            v = copy.deepcopy(raw)
            v["plan"].update(gpusPerReplica=16, tensorParallel=8, pipelineParallel=2, nodesPerReplica=2)
            yield f"{case}+lws", v


@pytest.mark.parametrize(("name", "raw"), list(variants()), ids=[n for n, _ in variants()])
def test_every_pod_template_carries_the_required_affinity_verbatim(name: str, raw: dict[str, Any]) -> None:
    children = build_children(load_inputs(raw))
    templates = [t for child in children for t in pod_templates(child)]
    workloads = [c for c in children if c["kind"] != "Service"]
    assert len(workloads) == 1
    assert len(templates) == (2 if workloads[0]["kind"] == "LeaderWorkerSet" else 1)
    for template in templates:
        assert template["spec"]["affinity"]["nodeAffinity"] == raw["nodeAffinity"], name
        assert template["spec"]["tolerations"] == raw["tolerations"], name


def test_the_affinity_is_copied_not_shared() -> None:
    raw = read_case("llama-8b-l4")
    inputs = load_inputs(raw)
    children = build_children(inputs)
    template = next(pod_templates(children[0]))
    template["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] = {}
    assert inputs.node_affinity == raw["nodeAffinity"]
    assert build_children(inputs) != children


@pytest.mark.parametrize(
    "affinity",
    [
        {},
        {"preferredDuringSchedulingIgnoredDuringExecution": []},
        {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}},
    ],
)
def test_inputs_without_required_affinity_are_refused(affinity: dict[str, Any]) -> None:
    raw = read_case("llama-8b-l4")
    raw["nodeAffinity"] = affinity
    with pytest.raises(ValueError, match="requiredDuringSchedulingIgnoredDuringExecution"):
        load_inputs(raw)


@pytest.mark.parametrize("case", CASES)
def test_spec_hash_annotation_matches_the_object(case: str) -> None:
    for child in build_children(load_inputs(read_case(case))):
        assert child["metadata"]["annotations"][SPEC_HASH_ANNOTATION] == spec_hash(child)
