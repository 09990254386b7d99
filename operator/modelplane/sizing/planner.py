"""The planner: for every allowed accelerator type in the fleet, the smallest valid replica shape;
then the cheapest replica-hour (optimizeFor Cost) or the lowest cost per token (Throughput).

Pure: a spec, a fleet and the operator configuration in, a PlanResult out. docs/sizing.md explains
the rules and the formulas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from .. import api
from ..catalog import Accelerator, ModelArchitecture, all_accelerators, get_accelerator, precision_for
from ..catalog import resolve_model as resolve_architecture
from ..config import OperatorConfig
from ..placement.inventory import Fleet, Pool
from . import reasons
from .memory import GIB, kv_bytes_per_token, time_per_output_token_ms, usable_gib, weights_gib
from .shapes import (
    MAX_PIPELINE_STAGES,
    Shape,
    pipeline_parallel_problem,
    tensor_parallel_problem,
    valid_tensor_parallel,
)

DEFAULT_MAX_CONTEXT = 8192  # the model's own context is capped here unless the spec asks for more
DEFAULT_MAX_SEQUENCES = 256  # vLLM's default --max-num-seqs, when the spec leaves it unset
CENT = Decimal("0.01")


# ------------------------------------------------------------------------------------ request


@dataclass(frozen=True)
class Request:
    """The spec, resolved against the catalog: everything the planner reads from it."""

    model: ModelArchitecture
    precision: api.Precision
    max_context_length: int
    kv_cache_sequences: int
    max_time_per_output_token_ms: int | None
    max_sequences: int
    optimize_for: api.OptimizeFor
    accelerators: tuple[str, ...]  # allow-list; empty = any
    tensor_parallel: int | None
    pipeline_parallel: int | None
    gpus_per_replica: int | None

    @property
    def kv_tokens_needed(self) -> int:
        return self.max_context_length * self.kv_cache_sequences

    def allows(self, accelerator: str) -> bool:
        return not self.accelerators or accelerator in self.accelerators


def resolve_request(spec: api.ModelDeploymentSpec) -> Request:
    """Check the spec against the catalog; raises api.SpecError naming the field."""
    model = resolve_architecture(spec.model)
    precision = precision_for(spec.model, model)
    for i, name in enumerate(spec.resources.accelerators):
        if get_accelerator(name) is None:
            known = ", ".join(a.name for a in all_accelerators())
            raise api.SpecError.single(
                f"spec.resources.accelerators[{i}]", f"unknown accelerator {name!r} (known: {known})"
            )
    requested = spec.serving.max_context_length
    if requested is not None and requested > model.max_context_length:
        raise api.SpecError.single(
            "spec.serving.maxContextLength",
            f"{requested} exceeds the {model.max_context_length}-token context of {model.name}",
        )
    res = spec.resources
    if res.pipeline_parallel is not None:
        problem = pipeline_parallel_problem(model, res.pipeline_parallel)
        if problem:
            raise api.SpecError.single("spec.resources.pipelineParallel", problem)
    gpus = res.gpus_per_replica
    for value, path in ((res.tensor_parallel, "tensorParallel"), (res.pipeline_parallel, "pipelineParallel")):
        if gpus is not None and value is not None and gpus % value:
            raise api.SpecError.single(
                "spec.resources.gpusPerReplica", f"{gpus} GPUs cannot be split by {path} {value}"
            )
    return Request(
        model=model,
        precision=precision,
        max_context_length=requested or min(model.max_context_length, DEFAULT_MAX_CONTEXT),
        kv_cache_sequences=spec.serving.kv_cache_sequences,
        max_time_per_output_token_ms=spec.serving.max_time_per_output_token_milliseconds,
        max_sequences=spec.serving.max_concurrent_sequences or DEFAULT_MAX_SEQUENCES,
        optimize_for=res.optimize_for,
        accelerators=tuple(res.accelerators),
        tensor_parallel=res.tensor_parallel,
        pipeline_parallel=res.pipeline_parallel,
        gpus_per_replica=gpus,
    )


def price_per_gpu_hour(accelerator: Accelerator, config: OperatorConfig) -> Decimal:
    text = config.prices.get(accelerator.name, accelerator.price_per_hour)
    try:
        price = Decimal(text)
    except InvalidOperation:
        raise api.SpecError.single(
            f"config.prices.{accelerator.name}", f"{text!r} is not a decimal price"
        ) from None
    if not price.is_finite() or price < 0:
        raise api.SpecError.single(f"config.prices.{accelerator.name}", f"{text!r} is not a price")
    return price


# ------------------------------------------------------------------------------- one shape


@dataclass(frozen=True)
class Fit:
    """One shape on one accelerator type, capacity aside: does memory hold it, is it fast enough?"""

    shape: Shape
    reason: str | None  # None: it fits
    message: str
    weights_gib_per_gpu: float
    kv_tokens: int
    kv_bytes_per_token_per_gpu: int
    time_per_output_token_ms: float

    @property
    def ok(self) -> bool:
        return self.reason is None


def fit_shape(req: Request, acc: Accelerator, shape: Shape, config: OperatorConfig) -> Fit:
    usable = usable_gib(acc, config)
    total = weights_gib(req.model, req.precision)
    per_gpu = total / shape.gpus
    kv_per_token = kv_bytes_per_token(
        req.model, req.precision, shape.tensor_parallel, shape.pipeline_parallel
    )
    tpot = time_per_output_token_ms(req.model, req.precision, acc, shape.tensor_parallel)
    label = _shape_label(shape, acc)
    if per_gpu >= usable:
        need = max(1, math.ceil(total / usable)) if usable > 0 else 0
        msg = (
            f"{label}: weights {total:.1f} GiB leave {per_gpu:.1f} GiB per GPU, more than the "
            f"{max(usable, 0):.1f} GiB usable of {acc.memory_gib:.1f} GiB"
            + (f"; they need ≥ {need} GPUs" if need else "")
        )
        return Fit(shape, reasons.INSUFFICIENT_MEMORY, msg, per_gpu, 0, kv_per_token, tpot)
    room = usable - per_gpu
    tokens = int(room * GIB // kv_per_token)
    share = room / usable
    if tokens < req.kv_tokens_needed or share < config.min_kv_cache_share:
        msg = (
            f"{label}: KV cache {room:.1f} GiB per GPU holds {tokens:,} tokens "
            f"({share:.0%} of usable memory); needs {req.kv_tokens_needed:,} tokens "
            f"and ≥ {config.min_kv_cache_share:.0%}"
        )
        return Fit(shape, reasons.INSUFFICIENT_KV_CACHE, msg, per_gpu, tokens, kv_per_token, tpot)
    bound = req.max_time_per_output_token_ms
    if bound is not None and tpot > bound:
        msg = (
            f"{label}: est. {tpot:.1f} ms per output token exceeds maxTimePerOutputTokenMilliseconds {bound}"
        )
        return Fit(shape, reasons.TOO_SLOW, msg, per_gpu, tokens, kv_per_token, tpot)
    return Fit(shape, None, f"{label}: fits", per_gpu, tokens, kv_per_token, tpot)


def _shape_label(shape: Shape, acc: Accelerator) -> str:
    par = f"TP {shape.tensor_parallel}" + (
        f", PP {shape.pipeline_parallel}" if shape.pipeline_parallel > 1 else ""
    )
    return f"{shape.gpus}x {acc.name} ({par})"


def tokens_per_second(req: Request, fit: Fit, acc: Accelerator) -> float:
    """Decode throughput of one replica, by roofline: each step reads the (active) weights once and the
    KV of every running sequence. Sequences average half the context; as many run as the KV cache
    holds, up to maxConcurrentSequences (vLLM's 256 when unset)."""
    average = max(1, req.max_context_length // 2)
    batch = max(1, min(req.max_sequences, fit.kv_tokens // average))
    shape = fit.shape
    weights_per_step = fit.time_per_output_token_ms / 1e3 * acc.bandwidth_gbps * 1e9 * shape.tensor_parallel
    kv_per_step = batch * average * fit.kv_bytes_per_token_per_gpu * shape.gpus
    # Every GPU reads its share; the PP stages run one after another.
    step_seconds = (weights_per_step + kv_per_step) / shape.tensor_parallel / (acc.bandwidth_gbps * 1e9)
    return batch / step_seconds


# ---------------------------------------------------------------------------- one accelerator


@dataclass(frozen=True)
class Candidate:
    """One accelerator type, evaluated: the smallest feasible shape, or why there is none."""

    accelerator: str
    reason: str | None  # None: feasible
    message: str
    shape: Shape | None = None
    nodes_per_replica: int = 0
    regions: tuple[str, ...] = ()
    weights_gib: float = 0.0
    kv_tokens: int = 0
    time_per_output_token_ms: float = 0.0
    cost_per_replica_hour: Decimal = Decimal(0)
    tokens_per_second: float = 0.0

    @property
    def feasible(self) -> bool:
        return self.reason is None

    @property
    def cost_per_million_tokens(self) -> Decimal:
        if self.tokens_per_second <= 0:
            return Decimal("Infinity")
        per_second = Decimal(repr(self.tokens_per_second))
        return self.cost_per_replica_hour / (per_second * 3600) * 1_000_000


def _shapes(req: Request, gpus_per_node: int) -> tuple[list[Shape], tuple[str, str] | None]:
    """The shapes to try on nodes of `gpus_per_node` GPUs, smallest first, or why none is valid."""
    model = req.model
    tp_o, pp_o, gpus_o = req.tensor_parallel, req.pipeline_parallel, req.gpus_per_replica
    multi_node = range(2, min(model.layers, MAX_PIPELINE_STAGES) + 1) if model.pipeline_parallel else range(0)
    shapes: list[Shape]
    if gpus_o is not None:
        if tp_o is not None:
            shapes = [Shape(tp_o, gpus_o // tp_o)]
        elif pp_o is not None:
            shapes = [Shape(gpus_o // pp_o, pp_o)]
        elif gpus_o <= gpus_per_node:
            shapes = [Shape(gpus_o)]
        else:
            tps = [tp for tp in valid_tensor_parallel(model, gpus_per_node) if gpus_o % tp == 0]
            if not tps:
                msg = f"no TP size ≤ {gpus_per_node} both divides {gpus_o} GPUs and suits {model.name}"
                return [], (reasons.INVALID_TENSOR_PARALLEL, msg)
            shapes = [Shape(tps[-1], gpus_o // tps[-1])]
    elif tp_o is not None:
        shapes = (
            [Shape(tp_o, pp_o or 1)]
            if pp_o is not None
            else [Shape(tp_o)] + [Shape(tp_o, p) for p in multi_node]
        )
    elif pp_o is not None:
        shapes = [Shape(tp, pp_o) for tp in valid_tensor_parallel(model, gpus_per_node)]
    else:
        tps = valid_tensor_parallel(model, gpus_per_node)
        shapes = [Shape(tp) for tp in tps] + [Shape(tps[-1], p) for p in multi_node]
    for shape in shapes:
        tp, pp = shape.tensor_parallel, shape.pipeline_parallel
        tp_problem = tensor_parallel_problem(model, tp)
        if tp_problem is None and shape.gpus > gpus_per_node and tp > gpus_per_node:
            tp_problem = f"TP {tp} needs {tp} GPUs on one node; nodes have {gpus_per_node}"
        if tp_problem:
            return [], (reasons.INVALID_TENSOR_PARALLEL, tp_problem)
        pp_problem = pipeline_parallel_problem(model, pp)
        if pp_problem:
            return [], (reasons.INVALID_PIPELINE_PARALLEL, pp_problem)
    return shapes, None


_FAILURE_RANK = {
    reasons.INSUFFICIENT_MEMORY: 1,
    reasons.INSUFFICIENT_KV_CACHE: 2,
    reasons.TOO_SLOW: 3,
    reasons.NOT_ENOUGH_NODES: 4,
}


def _search_pool(
    req: Request, acc: Accelerator, pool: Pool, config: OperatorConfig, fits: dict[Shape, Fit]
) -> tuple[Fit | None, tuple[str, str]]:
    """The smallest shape that fits the pool's nodes, or the most telling reason none does."""
    shapes, problem = _shapes(req, pool.gpus_per_node)
    if problem is not None:
        return None, problem
    failure = (reasons.INSUFFICIENT_MEMORY, f"{acc.name}: no shape to try")
    where = pool.region or "the fleet"
    for shape in shapes:
        fit = fits.get(shape)
        if fit is None:
            fit = fits[shape] = fit_shape(req, acc, shape, config)
        if fit.ok:
            if shape.fits_capacity(pool.node_gpus):
                return fit, ("", "")
            nodes = pool.nodes_with(shape.tensor_parallel)
            msg = (
                f"weights {weights_gib(req.model, req.precision):.1f} GiB need {_shape_label(shape, acc)}: "
                f"{shape.pipeline_parallel} nodes with ≥ {shape.tensor_parallel} GPUs; {where} has {nodes}"
            )
            return None, (reasons.NOT_ENOUGH_NODES, msg)
        assert fit.reason is not None
        if _FAILURE_RANK[fit.reason] >= _FAILURE_RANK[failure[0]]:
            failure = (fit.reason, fit.message)
    if failure[0] == reasons.INSUFFICIENT_MEMORY and not req.model.pipeline_parallel:
        failure = (
            failure[0],
            f"{failure[1]}; the node has {pool.gpus_per_node} and {req.model.name} cannot span nodes",
        )
    elif failure[0] == reasons.INSUFFICIENT_MEMORY:
        failure = (failure[0], f"{failure[1]}; nodes in {where} have {pool.gpus_per_node}")
    return None, failure


def evaluate_accelerator(
    req: Request, acc: Accelerator, pools: list[Pool], config: OperatorConfig
) -> Candidate:
    """The smallest feasible shape of `acc` over its pools (one per region), or why there is none."""
    if not req.allows(acc.name):
        return Candidate(acc.name, reasons.NOT_ALLOWED, "not in spec.resources.accelerators")
    if not acc.supports(req.precision):
        return Candidate(acc.name, reasons.UNSUPPORTED_PRECISION, acc.unsupported_reason(req.precision))
    fits: dict[Shape, Fit] = {}
    found: list[tuple[Fit, Pool]] = []
    failures: list[tuple[str, str]] = []
    for pool in pools:
        fit, failure = _search_pool(req, acc, pool, config, fits)
        if fit is not None:
            found.append((fit, pool))
        else:
            failures.append(failure)
    if not found:
        reason, message = max(failures, key=lambda f: _FAILURE_RANK.get(f[0], 0))
        return Candidate(acc.name, reason, message)
    best = min((fit for fit, _ in found), key=lambda f: (f.shape.gpus, f.shape.pipeline_parallel))
    shape = best.shape
    hosting = [pool for pool in pools if shape.fits_capacity(pool.node_gpus)]
    gpus_per_node = max(pool.gpus_per_node for pool in hosting)
    cost = (price_per_gpu_hour(acc, config) * shape.gpus).quantize(CENT)
    return Candidate(
        accelerator=acc.name,
        reason=None,
        message=f"{_shape_label(shape, acc)} fits at ${cost}/h",
        shape=shape,
        nodes_per_replica=shape.nodes(gpus_per_node),
        regions=tuple(sorted({pool.region for pool in hosting if pool.region})),
        weights_gib=weights_gib(req.model, req.precision),
        kv_tokens=best.kv_tokens,
        time_per_output_token_ms=best.time_per_output_token_ms,
        cost_per_replica_hour=cost,
        tokens_per_second=tokens_per_second(req, best, acc),
    )


def evaluate_fleet(req: Request, fleet: Fleet, config: OperatorConfig) -> list[Candidate]:
    """One candidate per accelerator type with usable nodes in the fleet (catalog order), plus a
    NotInFleet entry for each allow-listed type the fleet lacks."""
    pools = fleet.pools()
    out: list[Candidate] = []
    for acc in all_accelerators():
        mine = [p for p in pools if p.accelerator == acc.name]
        if mine:
            out.append(evaluate_accelerator(req, acc, mine, config))
    return out


def choose(req: Request, candidates: list[Candidate]) -> Candidate | None:
    """Among feasible candidates: the cheapest replica-hour, or the lowest cost per token."""
    feasible = [c for c in candidates if c.feasible]
    if not feasible:
        return None
    order = {a.name: i for i, a in enumerate(all_accelerators())}
    if req.optimize_for is api.OptimizeFor.THROUGHPUT:
        return min(
            feasible, key=lambda c: (c.cost_per_million_tokens, c.cost_per_replica_hour, order[c.accelerator])
        )
    return min(
        feasible,
        key=lambda c: (
            c.cost_per_replica_hour,
            c.shape.gpus if c.shape else 0,
            c.time_per_output_token_ms,
            order[c.accelerator],
        ),
    )


# ------------------------------------------------------------------------------------ result


@dataclass(frozen=True)
class PlanResult:
    plan: api.Plan | None
    rejected: tuple[api.RejectedCandidate, ...]
    reason: str | None  # None when planned; NoFeasibleShape | NoCompliantCapacity otherwise
    message: str
    candidates: tuple[Candidate, ...] = ()  # every accelerator evaluated in the fleet

    def cheaper_than(self, other: api.Plan | None) -> bool:
        """Whether this result's plan costs less per replica-hour than `other` (the running plan)."""
        if self.plan is None:
            return False
        if other is None:
            return True
        return Decimal(self.plan.cost_per_replica_hour) < Decimal(other.cost_per_replica_hour)


def _rejected(
    req: Request, chosen: Candidate | None, candidates: list[Candidate]
) -> list[api.RejectedCandidate]:
    out = []
    for c in candidates:
        if c is chosen:
            continue
        if c.feasible and chosen is not None:
            if req.optimize_for is api.OptimizeFor.THROUGHPUT:
                msg = (
                    f"{c.message}, ${c.cost_per_million_tokens:.3f} per million tokens vs "
                    f"${chosen.cost_per_million_tokens:.3f}"
                )
            else:
                msg = f"{c.message}, more than ${chosen.cost_per_replica_hour}/h"
            out.append(
                api.RejectedCandidate(accelerator=c.accelerator, reason=reasons.NOT_CHEAPEST, message=msg)
            )
        elif c.reason is not None:
            out.append(api.RejectedCandidate(accelerator=c.accelerator, reason=c.reason, message=c.message))
    return out


def plan_deployment(
    spec: api.ModelDeploymentSpec,
    fleet: Fleet,
    config: OperatorConfig,
    excluded: Fleet | None = None,
) -> PlanResult:
    """Size a ModelDeployment on `fleet` (the nodes it may use). `excluded` holds the nodes outside
    its residency policy: their accelerator types are reported as NotInResidencyRegions, and when
    only they could host the model the reason is NoCompliantCapacity. Raises api.SpecError."""
    req = resolve_request(spec)
    candidates = evaluate_fleet(req, fleet, config)
    present = {c.accelerator for c in candidates}
    extra: list[Candidate] = []
    outside: list[Candidate] = []
    if excluded is not None:
        outside = evaluate_fleet(req, excluded, config)
        for c in outside:
            if c.accelerator not in present and req.allows(c.accelerator):
                pools = [p for p in excluded.pools() if p.accelerator == c.accelerator]
                regions = sorted({p.region for p in pools if p.region})
                where = ", ".join(regions) or "unlabelled regions"
                extra.append(
                    Candidate(
                        c.accelerator,
                        reasons.NOT_IN_RESIDENCY_REGIONS,
                        f"only on nodes outside the residency policy ({where})",
                    )
                )
                present.add(c.accelerator)
    for name in req.accelerators:
        if name not in present:
            extra.append(Candidate(name, reasons.NOT_IN_FLEET, "no Ready, schedulable node of this type"))
            present.add(name)
    chosen = choose(req, candidates)
    order = {a.name: i for i, a in enumerate(all_accelerators())}
    everything = sorted(candidates + extra, key=lambda c: order[c.accelerator])
    rejected = _rejected(req, chosen, everything)
    if chosen is None or chosen.shape is None:
        compliant_elsewhere = [c.accelerator for c in outside if c.feasible]
        reason = reasons.NO_COMPLIANT_CAPACITY if compliant_elsewhere else reasons.NO_FEASIBLE_SHAPE
        return PlanResult(
            None,
            tuple(rejected),
            reason,
            _failure_message(req, rejected, compliant_elsewhere, fleet),
            tuple(candidates),
        )
    shape = chosen.shape
    plan = api.Plan(
        plan_class="SLM" if shape.gpus == 1 else "LLM",
        accelerator=chosen.accelerator,
        accelerator_summary=f"{shape.gpus}x {chosen.accelerator}",
        gpus_per_replica=shape.gpus,
        tensor_parallel=shape.tensor_parallel,
        pipeline_parallel=shape.pipeline_parallel,
        nodes_per_replica=chosen.nodes_per_replica,
        precision=req.precision,
        max_context_length=req.max_context_length,
        weights_gi_b=round(chosen.weights_gib, 2),
        kv_cache_tokens=chosen.kv_tokens,
        est_time_per_output_token_ms=round(chosen.time_per_output_token_ms, 1),
        cost_per_replica_hour=str(chosen.cost_per_replica_hour),
        regions=list(chosen.regions),
        rejected=rejected,
    )
    feasible = sum(1 for c in candidates if c.feasible)
    basis = "cost per token" if req.optimize_for is api.OptimizeFor.THROUGHPUT else "replica-hour"
    message = (
        f"{shape.gpus}x {chosen.accelerator} (TP {shape.tensor_parallel}, PP {shape.pipeline_parallel}) "
        f"at ${chosen.cost_per_replica_hour}/h: the cheapest {basis} of {feasible} feasible accelerator "
        f"type{'s' if feasible != 1 else ''}"
    )
    return PlanResult(plan, tuple(rejected), None, message, tuple(candidates))


def _failure_message(
    req: Request, rejected: list[api.RejectedCandidate], elsewhere: list[str], fleet: Fleet
) -> str:
    head = (
        f"No accelerator in the fleet can serve {req.model.name} in {req.precision.value} with "
        f"{req.max_context_length:,} tokens of context"
    )
    if not rejected and not fleet.pools():
        head += ": the fleet has no Ready, schedulable GPU nodes"
        body = ""
    else:
        shown = [r for r in rejected if r.reason != reasons.NOT_ALLOWED]
        body = ": " + "; ".join(f"{r.accelerator}: {r.message} ({r.reason})" for r in shown)
        hidden = len(rejected) - len(shown)
        if hidden:
            body += f"{'; ' if shown else ''}{hidden} other type{'s' if hidden != 1 else ''} not allowed"
    tail = ""
    if elsewhere:
        tail = f". Outside the residency policy, {', '.join(elsewhere)} would fit"
    return head + body + tail + "."


# ------------------------------------------------------------------------------- feasibility


def plan_is_feasible(
    plan: api.Plan, spec: api.ModelDeploymentSpec, fleet: Fleet, config: OperatorConfig
) -> bool:
    """Whether a running plan still fits: the spec still implies it and the fleet can still host it."""
    try:
        req = resolve_request(spec)
    except api.SpecError:
        return False
    acc = get_accelerator(plan.accelerator)
    if acc is None or not req.allows(acc.name) or not acc.supports(req.precision):
        return False
    if plan.precision is not req.precision or plan.max_context_length != req.max_context_length:
        return False
    shape = Shape(plan.tensor_parallel, plan.pipeline_parallel)
    if shape.gpus != plan.gpus_per_replica:
        return False
    for wanted, actual in (
        (req.tensor_parallel, shape.tensor_parallel),
        (req.pipeline_parallel, shape.pipeline_parallel),
        (req.gpus_per_replica, shape.gpus),
    ):
        if wanted is not None and wanted != actual:
            return False
    if tensor_parallel_problem(req.model, shape.tensor_parallel) or pipeline_parallel_problem(
        req.model, shape.pipeline_parallel
    ):
        return False
    if not fit_shape(req, acc, shape, config).ok:
        return False
    pools = [p for p in fleet.pools() if p.accelerator == acc.name]
    return any(
        shape.fits_capacity(p.node_gpus)
        and (shape.gpus <= p.gpus_per_node or shape.tensor_parallel <= p.gpus_per_node)
        for p in pools
    )
