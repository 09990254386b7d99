"""Why a candidate accelerator was not chosen, and why nothing was: the `reason` strings of the API."""

NOT_ALLOWED = "NotAllowed"  # not in spec.resources.accelerators
NOT_IN_RESIDENCY_REGIONS = "NotInResidencyRegions"  # only on nodes outside the residency policy
NOT_IN_FLEET = "NotInFleet"  # allowed by the spec, but no usable node has it
UNSUPPORTED_PRECISION = "UnsupportedPrecision"  # the GPU cannot run the precision (T4 bf16, fp8 before Ada)
INVALID_TENSOR_PARALLEL = "InvalidTensorParallel"  # no TP size the model and the nodes both accept
INVALID_PIPELINE_PARALLEL = "InvalidPipelineParallel"  # the requested PP exceeds the layers
INSUFFICIENT_MEMORY = "InsufficientMemory"  # the weights do not fit
INSUFFICIENT_KV_CACHE = "InsufficientKvCache"  # the weights fit, the KV cache does not
TOO_SLOW = "TooSlow"  # the roofline time per output token exceeds the bound
NOT_ENOUGH_NODES = "NotEnoughNodes"  # a shape fits, the fleet lacks the nodes for it
NOT_CHEAPEST = "NotCheapest"  # feasible, but another accelerator wins on optimizeFor

# PlanResult.reason when nothing fits
NO_FEASIBLE_SHAPE = "NoFeasibleShape"
NO_COMPLIANT_CAPACITY = "NoCompliantCapacity"  # something would fit, but only outside the residency policy
