"""The pure core of one reconcile: a snapshot of the world in, the desired state out.

`decide(snapshot)` parses the ModelDeployment, resolves residency, plans (keeping a running plan
while it stays feasible), builds the children, and works out the status, the events and which
children to apply or delete. It makes no API call, reads no clock and draws no random numbers:
the handlers pass `now` in and carry the decision out through `modelplane.kube`.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import api
from .api import FALSE, TRUE, UNKNOWN
from .catalog import get_accelerator
from .config import OperatorConfig
from .manifests import CHILD_KINDS, ChildInputs, build_children, with_spec_hash
from .manifests.labels import DEPLOYMENT_LABEL, SPEC_HASH_ANNOTATION
from .placement import Fleet, fleet_from_nodes
from .placement.affinity import accelerator_node_terms, admitter, build_node_affinity, tolerates
from .placement.residency import (
    PODS_OUTSIDE_POLICY,
    REGION_LABEL,
    ResidencyDecision,
    policy_admits,
    resolve_residency,
)
from .sizing import PlanResult, plan_deployment

MULTI_NODE_API = ("leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet")


@dataclass(frozen=True)
class Snapshot:
    """Everything one reconcile of one ModelDeployment looks at."""

    body: Mapping[str, Any]  # the ModelDeployment as the API server has it
    nodes: Sequence[Mapping[str, Any]]
    policies: Sequence[Mapping[str, Any]]  # ResidencyPolicy objects
    namespace_labels: Mapping[str, str]
    children: Sequence[Mapping[str, Any]]  # live Deployments/Services/LeaderWorkerSets it owns
    pods: Sequence[Mapping[str, Any]]  # live pods labelled with its name
    multi_node_available: bool  # is the LeaderWorkerSet API served?
    config: OperatorConfig
    now: dt.datetime
    # The inventory of `nodes`, when the caller keeps one between reconciles (built from them if not).
    fleet: Fleet | None = None


@dataclass(frozen=True)
class EventSpec:
    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass(frozen=True)
class ChildRef:
    api_version: str
    kind: str
    name: str


@dataclass(frozen=True)
class Decision:
    apply: list[dict[str, Any]] = field(default_factory=list)
    delete: list[ChildRef] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)  # the whole desired status, wire shape
    status_changed: bool = False
    events: list[EventSpec] = field(default_factory=list)


def timestamp(now: dt.datetime) -> str:
    return now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ----------------------------------------------------------------------------- status helpers


class StatusBuilder:
    """Accumulates conditions on top of the previous status, then renders the wire status."""

    def __init__(self, previous: Mapping[str, Any], generation: int | None, now: str) -> None:
        self.previous = previous
        self.generation = generation
        self.now = now
        self.conditions: list[api.Condition] = [
            api.Condition.model_validate(c) for c in previous.get("conditions") or [] if _valid_condition(c)
        ]
        self.fields: dict[str, Any] = {}

    def set(self, type_: str, status: str, reason: str, message: str) -> None:
        self.conditions = api.set_condition(
            self.conditions, type_, status, reason, message, self.now, self.generation
        )

    def get(self, type_: str) -> api.Condition | None:
        return api.get_condition(self.conditions, type_)

    def render(self, phase: str) -> dict[str, Any]:
        status: dict[str, Any] = {
            "observedGeneration": self.generation,
            "phase": phase,
            "conditions": [c.to_wire() for c in self.conditions],
        }
        status.update(self.fields)
        # The autoscaler owns status.latency; carry it over untouched.
        if "latency" in self.previous:
            status["latency"] = self.previous["latency"]
        if "latencySummary" in self.previous:
            status["latencySummary"] = self.previous["latencySummary"]
        return status


def _valid_condition(raw: Any) -> bool:
    try:
        api.Condition.model_validate(raw)
    except ValueError:
        return False
    return True


def _transition_events(
    before: Sequence[Mapping[str, Any]], after: Sequence[Mapping[str, Any]]
) -> list[EventSpec]:
    """An event for every condition whose status or reason changed (what a user cares about)."""
    old = {c.get("type"): c for c in before}
    events = []
    for cond in after:
        prev = old.get(cond["type"])
        if prev is not None and prev.get("status") == cond["status"] and prev.get("reason") == cond["reason"]:
            continue
        if prev is None and cond["status"] == UNKNOWN:
            continue
        warning = cond["status"] == FALSE and cond["reason"] not in _BENIGN_FALSE_REASONS
        events.append(EventSpec("Warning" if warning else "Normal", cond["reason"], cond["message"]))
    return events


# False conditions that are part of normal progress, not something a user must act on.
_BENIGN_FALSE_REASONS = frozenset({"ReplicasStarting", "ScaledToZero", "Progressing", "PodsPending"})


def merge_patch(target: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """RFC 7386 JSON merge patch: what the status becomes after we send `patch`."""
    out = dict(target)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge_patch(out[key], value)
        else:
            out[key] = value
    return out


def status_changes(old: Mapping[str, Any], patch: Mapping[str, Any]) -> bool:
    """Would sending `patch` change the stored status? (Only then is it sent.)"""
    return merge_patch(old, patch) != dict(old)


# ----------------------------------------------------------------------------- the fleet split


def gpu_toleration(config: OperatorConfig) -> dict[str, Any]:
    return {"key": config.gpu_toleration_key, "operator": "Exists"}


def _pod_tolerations(spec: api.ModelDeploymentSpec, config: OperatorConfig) -> list[dict[str, Any]]:
    return [t.to_wire() for t in spec.placement.tolerations] + [gpu_toleration(config)]


def split_fleet(
    fleet: Fleet,
    spec: api.ModelDeploymentSpec,
    policy: api.ResidencyPolicy | None,
    config: OperatorConfig,
) -> tuple[Fleet, Fleet]:
    """(nodes this deployment may use, nodes that only the residency policy rules out)."""
    placement_only = admitter(build_node_affinity([], None, spec.placement))
    with_policy = (
        admitter(build_node_affinity([], policy, spec.placement)) if policy is not None else placement_only
    )
    tolerations = [api.Toleration.model_validate(t) for t in _pod_tolerations(spec, config)]
    candidates = fleet.filter(lambda n: tolerates(n.taints, tolerations) and placement_only(n.labels, n.name))
    allowed = candidates.filter(lambda n: with_policy(n.labels, n.name))
    excluded = candidates.filter(lambda n: not with_policy(n.labels, n.name))
    return allowed, excluded


# ----------------------------------------------------------------------------- planning


def _pinned(spec: api.ModelDeploymentSpec, plan: api.Plan) -> api.ModelDeploymentSpec:
    """The spec restricted to the running plan's shape: is that shape still feasible?"""
    resources = spec.resources.model_copy(
        update={
            "accelerators": [plan.accelerator],
            "tensor_parallel": plan.tensor_parallel,
            "pipeline_parallel": plan.pipeline_parallel,
            "gpus_per_replica": plan.gpus_per_replica,
        }
    )
    return spec.model_copy(update={"resources": resources})


@dataclass(frozen=True)
class PlanOutcome:
    result: PlanResult  # the fresh, cheapest plan (or why there is none)
    plan: api.Plan | None  # the plan to run: the running one while feasible, else the fresh one
    kept: bool
    cheaper: api.Plan | None  # a cheaper plan than the one kept, if any


def choose_plan(
    spec: api.ModelDeploymentSpec,
    allowed: Fleet,
    excluded: Fleet,
    config: OperatorConfig,
    running: api.Plan | None,
) -> PlanOutcome:
    fresh = plan_deployment(spec, allowed, config, excluded=excluded)
    if running is not None and _allows(spec, running):
        try:
            same_shape = plan_deployment(_pinned(spec, running), allowed, config, excluded=excluded).plan
        except api.SpecError:
            same_shape = None  # e.g. the accelerator left the catalog
        if same_shape is not None and not _same_weights(same_shape, running):
            same_shape = None  # another model or precision: what runs was sized for something else
        if same_shape is not None:
            same_shape = same_shape.model_copy(
                update={"rejected": list(fresh.rejected) if fresh.plan else []}
            )
            cheaper = fresh.plan if fresh.cheaper_than(same_shape) else None
            return PlanOutcome(fresh, same_shape, True, cheaper)
    return PlanOutcome(fresh, fresh.plan, False, None)


def _allows(spec: api.ModelDeploymentSpec, plan: api.Plan) -> bool:
    """Does the spec still allow the running plan's shape (its accelerator and any GPU count or
    parallelism the spec sets)? If not, the user asked for a move."""
    r = spec.resources
    return (
        (not r.accelerators or plan.accelerator in r.accelerators)
        and r.gpus_per_replica in (None, plan.gpus_per_replica)
        and r.tensor_parallel in (None, plan.tensor_parallel)
        and r.pipeline_parallel in (None, plan.pipeline_parallel)
    )


def _same_weights(a: api.Plan, b: api.Plan) -> bool:
    return a.precision == b.precision and abs(a.weights_gi_b - b.weights_gi_b) < 0.005


def _shape(plan: api.Plan) -> str:
    return f"{plan.gpus_per_replica}x {plan.accelerator}"


def _running_plan(status: Mapping[str, Any]) -> api.Plan | None:
    raw = status.get("plan")
    if not raw:
        return None
    try:
        return api.Plan.model_validate(raw)
    except ValueError:
        return None


def _plan_wire(plan: api.Plan) -> dict[str, Any]:
    wire = plan.to_wire()
    wire["acceleratorSummary"] = _shape(plan)
    return wire


# ----------------------------------------------------------------------------- children state


def _owned(children: Sequence[Mapping[str, Any]], uid: str | None) -> list[Mapping[str, Any]]:
    out = []
    for child in children:
        refs = (child.get("metadata") or {}).get("ownerReferences") or []
        if any(r.get("uid") == uid and r.get("controller") for r in refs):
            out.append(child)
    return out


def _child_key(obj: Mapping[str, Any]) -> tuple[str, str, str]:
    return (str(obj.get("apiVersion")), str(obj.get("kind")), str(obj["metadata"]["name"]))


def _hash_of(obj: Mapping[str, Any]) -> str | None:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(SPEC_HASH_ANNOTATION)
    return str(value) if value is not None else None


def contains(live: Any, desired: Any) -> bool:
    """Does the live object still hold everything we asked for? Fields others (or the API server's
    defaulting) added are fine; a value of ours changed by hand is not. Lists match when every
    desired item is contained in some live item, so an item someone else added never causes a
    write loop. Scalars compare as text: the API server returns quantities as strings."""
    if isinstance(desired, Mapping):
        return isinstance(live, Mapping) and all(
            k in live and contains(live[k], v) for k, v in desired.items()
        )
    if isinstance(desired, list):
        return isinstance(live, list) and all(any(contains(item, want) for item in live) for want in desired)
    if isinstance(desired, bool) or isinstance(live, bool):
        return desired is live or desired == live
    return desired == live or str(desired) == str(live)


def needs_apply(desired: Mapping[str, Any], live: Mapping[str, Any] | None) -> bool:
    """Apply when the child is missing, was built from another desired state, or drifted."""
    if live is None or _hash_of(live) != _hash_of(desired):
        return True
    return not (
        contains(live.get("metadata"), desired.get("metadata"))
        and contains(live.get("spec"), desired.get("spec"))
    )


def recreate_rollout(deployment: Mapping[str, Any]) -> dict[str, Any]:
    """The Deployment with a Recreate rollout: every old pod goes before a new one starts.

    Used while pods run outside the residency policy that now governs: a rolling update would
    keep old pods (outside the policy) serving until capacity inside it frees up, possibly forever.
    """
    out = copy.deepcopy(dict(deployment))
    out["spec"]["strategy"] = {"type": "Recreate"}
    out["metadata"].get("annotations", {}).pop(SPEC_HASH_ANNOTATION, None)
    return with_spec_hash(out)


def refused_by_api_server(
    decision: Decision,
    previous_status: Mapping[str, Any],
    generation: int | None,
    now: dt.datetime,
    message: str,
) -> Decision:
    """The decision's status, with `Ready=False, reason=ApplyFailed` and the API server's message,
    after it refused a child (e.g. a user's env var with an invalid `valueFrom`). Nothing is retried
    until something changes: the same request would be refused again."""
    sb = StatusBuilder(decision.status, generation, timestamp(now))
    sb.set(api.READY, FALSE, "ApplyFailed", f"the API server refused a child: {message}")
    status = {**decision.status, **sb.render("Failed")}
    return Decision(
        status=status,
        status_changed=status_changes(previous_status, status),
        events=_transition_events(previous_status.get("conditions") or [], status["conditions"]),
    )


def desired_replica_count(spec: api.ModelDeploymentSpec) -> int:
    """spec.replicas (what /scale sets), kept inside minReplicas..maxReplicas when autoscaling is on."""
    if not spec.autoscaling.enabled:
        return spec.replicas
    return max(spec.autoscaling.min_replicas, min(spec.autoscaling.max_replicas, spec.replicas))


def _workload_counts(children: Sequence[Mapping[str, Any]]) -> tuple[int, int, bool]:
    """(replicas, ready replicas, rollout done) of the Deployment or LeaderWorkerSet (groups for LWS)."""
    for child in children:
        if child.get("kind") in ("Deployment", "LeaderWorkerSet"):
            st = child.get("status") or {}
            replicas, ready = int(st.get("replicas") or 0), int(st.get("readyReplicas") or 0)
            generation = int((child.get("metadata") or {}).get("generation") or 0)
            observed = int(st.get("observedGeneration") or generation)
            updated = int(st.get("updatedReplicas", replicas) or 0)
            done = observed >= generation and updated >= int((child.get("spec") or {}).get("replicas") or 0)
            return replicas, ready, done
    return 0, 0, False


def _unschedulable(pods: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(pod name, the scheduler's message) for pods the scheduler could not place."""
    out = []
    for pod in pods:
        if (pod.get("metadata") or {}).get("deletionTimestamp"):
            continue
        for cond in (pod.get("status") or {}).get("conditions") or []:
            if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
                out.append((pod["metadata"]["name"], str(cond.get("message") or cond.get("reason") or "")))
    return sorted(out)


def pods_outside_policy(
    pods: Sequence[Mapping[str, Any]], fleet: Fleet, policy: api.ResidencyPolicy
) -> list[tuple[str, str, str]]:
    """(pod, node, region) for live pods bound to a node the policy does not admit, sorted.

    Pods made under an earlier placement (the policy changed, the namespace was bound later, a
    node's labels changed) keep running until the rollout replaces them, and a rollout stalls when
    the policy's nodes are full. Pods on nodes the index no longer has are not judged."""
    labels_of = {n.name: n.labels for n in fleet.nodes}
    out = []
    for pod in pods:
        meta = pod.get("metadata") or {}
        node = (pod.get("spec") or {}).get("nodeName")
        if not node or meta.get("deletionTimestamp") or node not in labels_of:
            continue
        labels = labels_of[node]
        if not policy_admits(policy, labels, node):
            out.append((str(meta.get("name")), str(node), str(labels.get(REGION_LABEL, "no region"))))
    return sorted(out)


GROUP_INDEX_LABEL = "leaderworkerset.sigs.k8s.io/group-index"


def groups_to_admit(wanted: int, live_groups: int, pods: Sequence[Mapping[str, Any]], size: int) -> int:
    """How many groups the LeaderWorkerSet should have now. The scheduler places pods one by one, not
    a group at a time: two new groups can each take one node of the last free pair and then both wait
    forever, serving nothing. So a new group is admitted only once every group before it has all its
    `size` pods on nodes. Never fewer than the LeaderWorkerSet already has (a rolling update or a lost
    node must not shrink it), never more than `wanted`."""
    placed: dict[str, int] = {}
    for pod in pods:
        meta = pod.get("metadata") or {}
        index = (meta.get("labels") or {}).get(GROUP_INDEX_LABEL)
        if (
            index is not None
            and not meta.get("deletionTimestamp")
            and (pod.get("spec") or {}).get("nodeName")
        ):
            placed[index] = placed.get(index, 0) + 1
    complete = 0
    while placed.get(str(complete), 0) >= size:
        complete += 1
    return min(wanted, max(live_groups, complete + 1))


def _group_name(pod: Mapping[str, Any], deployment_name: str) -> str | None:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    index = labels.get(GROUP_INDEX_LABEL)
    return f"{deployment_name}-{index}" if index is not None else None


# ----------------------------------------------------------------------------- decide


def decide(snap: Snapshot) -> Decision:
    body = snap.body
    meta = body.get("metadata") or {}
    name, namespace = str(meta.get("name")), str(meta.get("namespace"))
    generation = meta.get("generation")
    previous_status: Mapping[str, Any] = body.get("status") or {}
    sb = StatusBuilder(previous_status, generation, timestamp(snap.now))
    owned = _owned(snap.children, meta.get("uid"))
    live = {_child_key(c): c for c in owned}

    def finish(
        phase: str,
        apply: list[dict[str, Any]] | None = None,
        delete: list[ChildRef] | None = None,
        extra_events: Sequence[EventSpec] = (),
    ) -> Decision:
        status = sb.render(phase)
        changed = status_changes(previous_status, status)
        events = _transition_events(previous_status.get("conditions") or [], status["conditions"])
        return Decision(
            apply=apply or [],
            delete=delete or [],
            status=status,
            status_changed=changed,
            events=[*extra_events, *events],
        )

    if meta.get("deletionTimestamp"):
        return Decision()  # going away: garbage collection takes the children; nothing to write

    # 1. The spec. The schema caught what it can; the rest is reported, and nothing running is lost.
    try:
        md = api.parse_model_deployment(body)
    except api.SpecError as err:
        msg = f"invalid spec: {err}"
        sb.set(api.PLANNED, FALSE, "InvalidSpec", msg)
        sb.set(api.READY, FALSE, "InvalidSpec", msg)
        return finish("Failed")
    spec = md.spec

    # 2. Residency.
    policies = []
    for raw in snap.policies:
        try:
            policies.append(api.parse_residency_policy(raw))
        except api.SpecError:
            continue  # a policy the schema let through but we cannot read is reported on the policy
    residency: ResidencyDecision = resolve_residency(
        namespace,
        snap.namespace_labels,
        spec.placement.residency,
        policies,
        snap.config.default_residency_policy,
        last_applied=previous_status.get("residencyPolicy") if live else None,
    )
    fleet = snap.fleet if snap.fleet is not None else fleet_from_nodes(snap.nodes)
    outside = pods_outside_policy(snap.pods, fleet, residency.policy) if residency.policy else []
    if outside:
        # The policy governs, but pods made before it did still run elsewhere: say so (set once,
        # so that the condition's transition time stays put between reconciles).
        pod, node, region = outside[0]
        sb.set(
            api.RESIDENCY_SATISFIED,
            FALSE,
            PODS_OUTSIDE_POLICY,
            f"{len(outside)} pod(s) still run on nodes residency policy {residency.policy_name} does not "
            f"allow (pod {pod} on node {node} in {region}); the operator replaces them all at once "
            "(Recreate): compliance before availability",
        )
    else:
        sb.set(api.RESIDENCY_SATISFIED, residency.status, residency.reason, residency.message)
    if residency.refused:
        sb.set(api.READY, FALSE, residency.reason, residency.message)
        sb.set(api.PLANNED, FALSE, residency.reason, "not planned: " + residency.message)
        deletions = [ChildRef(*k) for k in live]  # refused: nothing of it may run
        return finish("Failed", delete=deletions)
    if residency.status == UNKNOWN:
        # The named policy is gone: keep what runs where it runs, never drop the constraint.
        serving = _workload_counts(owned)[1] >= spec.replicas > 0
        sb.set(api.READY, TRUE if serving else FALSE, residency.reason, residency.message)
        return finish("Degraded" if live else "Failed")

    # 3. Plan against the nodes residency and the user's placement allow.
    allowed, excluded = split_fleet(fleet, spec, residency.policy, snap.config)
    try:
        outcome = choose_plan(spec, allowed, excluded, snap.config, _running_plan(previous_status))
    except api.SpecError as err:
        msg = f"invalid spec: {err}"
        sb.set(api.PLANNED, FALSE, "InvalidSpec", msg)
        sb.set(api.READY, FALSE, "InvalidSpec", msg)
        return finish("Failed")
    plan = outcome.plan
    if plan is None:
        reason = outcome.result.reason or "NoFeasibleShape"
        sb.set(api.PLANNED, FALSE, reason, outcome.result.message)
        sb.set(api.READY, FALSE, reason, "no plan: " + outcome.result.message)
        sb.fields["plan"] = previous_status.get("plan")  # what runs (if anything) keeps running
        # Capacity may appear (a node joins): the node watch re-triggers; no retry storm here.
        return finish("Failed" if not live else "Degraded")

    accelerator = get_accelerator(plan.accelerator)
    if outcome.kept and outcome.cheaper is not None:
        c = outcome.cheaper
        sb.set(
            api.PLANNED,
            TRUE,
            "CheaperPlanAvailable",
            f"keeping {_shape(plan)} (${plan.cost_per_replica_hour}/h per replica) while it fits; "
            f"{_shape(c)} would cost ${c.cost_per_replica_hour}/h. To move, set "
            f"spec.resources.accelerators to [{c.accelerator}].",
        )
    else:
        sb.set(
            api.PLANNED,
            TRUE,
            "Planned",
            f"{plan.plan_class}: {_shape(plan)} (TP {plan.tensor_parallel}, PP {plan.pipeline_parallel}, "
            f"{plan.nodes_per_replica} node(s) per replica), {plan.weights_gi_b:.1f} GiB weights, "
            f"{plan.kv_cache_tokens} KV tokens, ~{plan.est_time_per_output_token_ms:.0f} ms/token, "
            f"${plan.cost_per_replica_hour}/h per replica",
        )
    sb.fields["plan"] = _plan_wire(plan)
    sb.fields["residencyPolicy"] = residency.policy.metadata.name if residency.policy is not None else None
    sb.fields["regionsSummary"] = ",".join(plan.regions) or None
    sb.fields["selector"] = f"{DEPLOYMENT_LABEL}={name}"
    sb.fields["endpoint"] = f"http://{name}.{namespace}.svc:{spec.serving.port}/v1"
    desired_replicas = desired_replica_count(spec)
    sb.fields["desiredReplicas"] = desired_replicas
    if spec.autoscaling.enabled:
        a = spec.autoscaling
        sb.set(
            api.AUTOSCALING,
            FALSE,
            "AutoscalerNotActive",
            f"latency autoscaling ({a.metric.value} p{a.percentile} <= {a.target_milliseconds} ms) is not "
            f"active in this operator version; replicas follow spec.replicas ({spec.replicas}) within "
            f"minReplicas..maxReplicas ({a.min_replicas}..{a.max_replicas}): {desired_replicas}",
        )
    else:
        sb.conditions = [c for c in sb.conditions if c.type != api.AUTOSCALING]

    # 4. Multi-node needs the LeaderWorkerSet API.
    if plan.nodes_per_replica > 1 and not snap.multi_node_available:
        msg = (
            f"{_shape(plan)} needs {plan.nodes_per_replica} nodes per replica, which Modelplane runs as a "
            "LeaderWorkerSet; the LeaderWorkerSet API (leaderworkerset.x-k8s.io/v1) is not installed in "
            "this cluster. Ask the platform team to install LeaderWorkerSet (sigs.k8s.io/lws)."
        )
        sb.set(api.READY, FALSE, "MultiNodeUnavailable", msg)
        sb.set(api.SCHEDULED, UNKNOWN, "MultiNodeUnavailable", msg)
        return finish("Failed")

    # 5. The children.
    products = list(accelerator.products) if accelerator is not None else []
    affinity = build_node_affinity(
        accelerator_node_terms(products) if products else [], residency.policy, spec.placement
    )
    workload_replicas = desired_replicas
    if plan.nodes_per_replica > 1:
        live_set = live.get((*MULTI_NODE_API, name)) or {}
        live_groups = int((live_set.get("spec") or {}).get("replicas") or 0)
        workload_replicas = groups_to_admit(desired_replicas, live_groups, snap.pods, plan.nodes_per_replica)
    inputs = ChildInputs(
        deployment=md,
        plan=plan,
        config=snap.config,
        node_affinity=affinity,
        tolerations=_pod_tolerations(spec, snap.config),
        gpu_resource=accelerator.resource if accelerator is not None else "nvidia.com/gpu",
        replicas=workload_replicas,
    )
    try:
        desired = build_children(inputs)
    except api.SpecError as err:
        msg = f"invalid spec: {err}"
        sb.set(api.READY, FALSE, "InvalidSpec", msg)
        return finish("Failed")
    if outside:
        desired = [recreate_rollout(c) if c["kind"] == "Deployment" else c for c in desired]
    to_apply = [c for c in desired if needs_apply(c, live.get(_child_key(c)))]
    desired_keys = {_child_key(c) for c in desired}
    to_delete = [ChildRef(*k) for k in live if k not in desired_keys and (k[0], k[1]) in CHILD_KINDS]
    extra: list[EventSpec] = []
    for child in to_apply:
        verb = "Updated" if _child_key(child) in live else "Created"
        extra.append(EventSpec("Normal", verb, f"{verb.lower()} {child['kind']} {child['metadata']['name']}"))
    for ref in to_delete:
        extra.append(EventSpec("Normal", "Deleted", f"deleted {ref.kind} {ref.name} (plan changed)"))

    # 6. Where the pods stand. Counts come from the live workload, so they lag a fresh apply.
    replicas, ready, rolled_out = _workload_counts([c for c in owned if _child_key(c) in desired_keys])
    sb.fields["replicas"] = replicas
    sb.fields["readyReplicas"] = ready
    sb.fields["readySummary"] = f"{ready}/{desired_replicas}"

    stuck = _unschedulable(snap.pods)
    if desired_replicas == 0:
        sb.set(api.SCHEDULED, TRUE, "ScaledToZero", "no replicas requested")
    elif stuck:
        pod, why = stuck[0]
        group = next((_group_name(p, name) for p in snap.pods if p["metadata"]["name"] == pod), None)
        where = f"group {group} (pod {pod})" if group else f"pod {pod}"
        sb.set(api.SCHEDULED, FALSE, "Unschedulable", f"{len(stuck)} pod(s) cannot be placed; {where}: {why}")
    elif snap.pods:
        sb.set(api.SCHEDULED, TRUE, "Scheduled", "all pods are placed on nodes")
    else:
        sb.set(api.SCHEDULED, UNKNOWN, "PodsPending", "no pods yet")

    if desired_replicas == 0:
        sb.set(api.READY, FALSE, "ScaledToZero", "scaled to zero replicas; nothing serves")
        phase = "ScaledToZero"
    elif ready >= desired_replicas and rolled_out and not to_apply:
        sb.set(api.READY, TRUE, "ReplicasReady", f"{ready}/{desired_replicas} replicas ready")
        phase = "Ready"
    elif stuck:
        sb.set(
            api.READY, FALSE, "Unschedulable", f"{ready}/{desired_replicas} replicas ready; pods are Pending"
        )
        phase = "Pending"
    else:
        sb.set(api.READY, FALSE, "ReplicasStarting", f"{ready}/{desired_replicas} replicas ready")
        phase = "Progressing"
    return finish(phase, apply=to_apply, delete=to_delete, extra_events=extra)
