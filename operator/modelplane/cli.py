"""The `modelplane` command (also installed as `kubectl-modelplane`, so `kubectl modelplane ...` works).

Subcommands register themselves in SUBCOMMANDS: a function that adds its parser to the subparsers
and sets `func` (argparse.Namespace -> exit code) as the parser's default.

`modelplane plan -f MANIFEST [--fleet NODES] [--config CONFIG] [-o table|json]` sizes every
ModelDeployment in MANIFEST as the operator would: ResidencyPolicies (and Namespaces, for their
labels) in the same file are honoured, the deployment's own nodeSelector/nodeAffinity narrow the
fleet. Exit codes: 0 every deployment has a plan, 1 at least one fits nowhere, 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import yaml

from . import api
from .config import OperatorConfig, load_config
from .placement import Fleet, NodeInfo, default_fleet, fleet_from_nodes
from .placement.affinity import admits, build_node_affinity
from .placement.residency import policy_admits, resolve_residency
from .sizing import PlanResult, plan_deployment

AddParser = Callable[[Any], None]

EXIT_OK, EXIT_UNPLANNED, EXIT_BAD_INPUT = 0, 1, 2


class InputError(Exception):
    """Bad input, reported as one line: `error: <file>: <path>: <message>`."""

    def __init__(self, file: str, path: str, message: str) -> None:
        self.file, self.path, self.message = file, path, message
        super().__init__(self.line())

    def line(self) -> str:
        parts = [p for p in (self.file, self.path) if p]
        return "error: " + ": ".join([*parts, self.message])


# --------------------------------------------------------------------------------- reading


def _read_documents(path: str) -> list[tuple[int, Any]]:
    """The YAML documents of a file, numbered from 1, empty ones dropped."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise InputError(path, "", f"cannot read: {err.strerror or err}") from None
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise InputError(path, where, f"malformed YAML: {problem}") from None
    return [(i, d) for i, d in enumerate(docs, start=1) if d is not None]


def _mapping(path: str, index: int, doc: Any) -> Mapping[str, Any]:
    if not isinstance(doc, Mapping):
        raise InputError(path, f"document {index}", "must be a mapping (a Kubernetes object)")
    return doc


@dataclass(frozen=True)
class Manifest:
    deployments: tuple[api.ModelDeployment, ...]
    policies: tuple[api.ResidencyPolicy, ...]
    namespace_labels: Mapping[str, Mapping[str, str]]


def read_manifest(path: str) -> Manifest:
    deployments: list[api.ModelDeployment] = []
    policies: list[api.ResidencyPolicy] = []
    namespaces: dict[str, dict[str, str]] = {}
    for index, raw in _read_documents(path):
        doc = _mapping(path, index, raw)
        kind = doc.get("kind")
        if kind == "Namespace":
            meta = doc.get("metadata") or {}
            namespaces[str(meta.get("name", ""))] = {
                str(k): str(v) for k, v in (meta.get("labels") or {}).items()
            }
            continue
        if kind not in ("ModelDeployment", "ResidencyPolicy"):
            continue  # other objects (Secrets, ...) are not the planner's business
        try:
            obj = api.parse_manifest(doc)
        except api.SpecError as err:
            problem = err.problems[0]
            name = (doc.get("metadata") or {}).get("name")
            suffix = f" ({kind} {name})" if name and len(err.problems) == 1 else ""
            raise InputError(path, problem.path, _problems_message(err) + suffix) from None
        if isinstance(obj, api.ModelDeployment):
            deployments.append(obj)
        else:
            policies.append(obj)
    if not deployments:
        raise InputError(path, "", "no ModelDeployment in the file")
    return Manifest(tuple(deployments), tuple(policies), namespaces)


def _problems_message(err: api.SpecError) -> str:
    first, *rest = err.problems
    more = "; " + "; ".join(str(p) for p in rest) if rest else ""
    return first.message + more


def _nodes(path: str, docs: list[tuple[int, Any]]) -> Iterator[Mapping[str, Any]]:
    for index, raw in docs:
        doc = _mapping(path, index, raw)
        if doc.get("kind") == "List" or ("items" in doc and "kind" not in doc):
            for j, item in enumerate(doc.get("items") or []):
                if not isinstance(item, Mapping):
                    raise InputError(path, f"document {index}: items[{j}]", "must be a Node object")
                if item.get("kind", "Node") == "Node":
                    yield item
        elif doc.get("kind") == "Node":
            yield doc


def read_fleet(path: str) -> Fleet:
    fleet = fleet_from_nodes(list(_nodes(path, _read_documents(path))))
    if not fleet.nodes:
        raise InputError(path, "", "no Node objects in the file")
    return fleet


def read_config(path: str | None) -> OperatorConfig:
    if path is None:
        return OperatorConfig()
    docs = _read_documents(path)
    if len(docs) > 1:
        raise InputError(path, "", "the operator configuration is one YAML document")
    data = docs[0][1] if docs else {}
    if not isinstance(data, Mapping):
        raise InputError(path, "", "the operator configuration must be a mapping")
    try:
        return load_config(data)
    except api.SpecError as err:
        raise InputError(path, err.problems[0].path, _problems_message(err)) from None


# -------------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class Planned:
    deployment: api.ModelDeployment
    result: PlanResult
    policy: str | None


def plan_one(
    path: str, manifest: Manifest, md: api.ModelDeployment, fleet: Fleet, config: OperatorConfig
) -> Planned:
    """Size one deployment the way the operator does: residency first, then the user's placement."""
    namespace = md.metadata.namespace or "default"
    label = f"ModelDeployment {namespace}/{md.metadata.name}"
    decision = resolve_residency(
        namespace,
        manifest.namespace_labels.get(namespace, {}),
        md.spec.placement.residency,
        manifest.policies,
        config.default_residency_policy,
    )
    if decision.refused or decision.keep_existing:
        raise InputError(path, "spec.placement.residency", f"{decision.message} ({label})")
    policy = decision.policy
    placement = build_node_affinity([], None, md.spec.placement)

    def user_admits(node: NodeInfo) -> bool:
        return admits(node.labels, placement, node.name)

    def compliant(node: NodeInfo) -> bool:
        return policy_admits(policy, node.labels, node.name)

    allowed = fleet.filter(lambda n: compliant(n) and user_admits(n))
    excluded = fleet.filter(lambda n: not compliant(n) and user_admits(n)) if policy is not None else None
    try:
        result = plan_deployment(md.spec, allowed, config, excluded)
    except api.SpecError as err:
        raise InputError(path, err.problems[0].path, f"{_problems_message(err)} ({label})") from None
    return Planned(md, result, policy.metadata.name if policy is not None else None)


# --------------------------------------------------------------------------------- output


def plan_json(planned: Planned) -> dict[str, Any]:
    md, result = planned.deployment, planned.result
    out: dict[str, Any] = {
        "name": md.metadata.name,
        "namespace": md.metadata.namespace or "default",
        "model": md.spec.model.name,
        "residencyPolicy": planned.policy,
    }
    if result.plan is not None:
        out.update(result.plan.to_wire())
        out.setdefault("regions", [])
        out.setdefault("rejected", [])
    else:
        keys = (
            "class", "accelerator", "gpusPerReplica", "tensorParallel", "pipelineParallel", "nodesPerReplica",
            "weightsGiB", "kvCacheTokens", "estTimePerOutputTokenMs", "costPerReplicaHour",
        )  # fmt: skip
        out.update(dict.fromkeys(keys))
        out["regions"] = []
        out["rejected"] = [r.to_wire() for r in result.rejected]
    out["reason"] = result.reason
    out["message"] = result.message
    return out


def _wrap(text: str, width: int, indent: str) -> list[str]:
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(indent + line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    if line:
        lines.append(indent + line)
    return lines


def plan_table(planned: Planned) -> str:
    md, result, plan = planned.deployment, planned.result, planned.result.plan
    namespace = md.metadata.namespace or "default"
    lines = [f"{namespace}/{md.metadata.name}    {md.spec.model.name}"]
    if planned.policy:
        lines.append(f"  residency   {planned.policy}")
    if plan is not None:
        nodes = f"{plan.nodes_per_replica} node{'s' if plan.nodes_per_replica != 1 else ''}"
        lines += [
            f"  plan        {plan.plan_class}  {plan.gpus_per_replica}x {plan.accelerator}  "
            f"TP {plan.tensor_parallel}  PP {plan.pipeline_parallel}  {nodes} per replica",
            f"  precision   {plan.precision.value}, context {plan.max_context_length:,} tokens",
            f"  memory      weights {plan.weights_gi_b:.2f} GiB, KV cache {plan.kv_cache_tokens:,} tokens",
            f"  latency     est. {plan.est_time_per_output_token_ms:.1f} ms per output token (roofline)",
            f"  cost        ${plan.cost_per_replica_hour} per replica-hour",
            f"  regions     {', '.join(plan.regions) or '(nodes without a region label)'}",
        ]
    else:
        lines.append(f"  NO PLAN     {result.reason}")
        lines += _wrap(result.message, 100, "              ")
    if result.rejected:
        lines.append("  rejected")
        width = max(len(r.accelerator) for r in result.rejected)
        rwidth = max(len(r.reason) for r in result.rejected)
        for r in result.rejected:
            lines.append(f"    {r.accelerator:<{width}}  {r.reason:<{rwidth}}  {r.message or ''}".rstrip())
    return "\n".join(lines)


# -------------------------------------------------------------------------------- commands


def add_plan_parser(sub: Any) -> None:
    p = sub.add_parser(
        "plan",
        help="size the ModelDeployments in a manifest",
        description="Size every ModelDeployment in MANIFEST against a GPU fleet, as the operator would.",
    )
    p.add_argument(
        "-f", "--filename", required=True, metavar="MANIFEST", help="ModelDeployments (and policies)"
    )
    p.add_argument(
        "--fleet", metavar="NODES_YAML", help="Node objects (default: one 8-GPU node of every type)"
    )
    p.add_argument("--config", metavar="OPERATOR_CONFIG", help="operator configuration: prices, shares")
    p.add_argument("-o", "--output", choices=("table", "json"), default="table", help="output format")
    p.set_defaults(func=plan_command)


def plan_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    manifest = read_manifest(args.filename)
    fleet = read_fleet(args.fleet) if args.fleet else default_fleet()
    config = read_config(args.config)
    planned = [plan_one(args.filename, manifest, md, fleet, config) for md in manifest.deployments]
    if args.output == "json":
        for p in planned:
            out.write(json.dumps(plan_json(p), ensure_ascii=False) + "\n")
    else:
        unknown = fleet.unknown_products()
        if unknown:
            listed = ", ".join(
                f"{product} ({len(nodes)} nodes)" for product, nodes in sorted(unknown.items())
            )
            out.write(f"note: GPU products not in the catalog are ignored: {listed}\n\n")
        out.write("\n\n".join(plan_table(p) for p in planned) + "\n")
    return EXIT_OK if all(p.result.plan is not None for p in planned) else EXIT_UNPLANNED


def _add_run_parser(sub: Any) -> None:
    from .runner import add_run_parser

    add_run_parser(sub)


# One function per subcommand: it adds its parser and sets `func`.
SUBCOMMANDS: dict[str, AddParser] = {"plan": add_plan_parser, "run": _add_run_parser}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelplane", description="Serve language models on Kubernetes, right-sized."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in SUBCOMMANDS.values():
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except InputError as err:
        sys.stderr.write(err.line() + "\n")
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
