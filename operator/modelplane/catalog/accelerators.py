"""Accelerator types: memory, bandwidth, default price, and the node labels that identify them."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from ..api import Precision

GIB = 2**30


@dataclass(frozen=True)
class Accelerator:
    name: str  # catalog name, e.g. "nvidia-h100-80gb"
    vendor: str  # "nvidia" | "amd"
    resource: str  # extended resource a pod requests, e.g. "nvidia.com/gpu"
    products: tuple[str, ...]  # label values (GFD nvidia.com/gpu.product, amd.com/gpu.product-name)
    memory_gb: int  # datasheet figure, 10^9 bytes
    bandwidth_gbps: int  # peak memory bandwidth, 10^9 bytes/s
    price_per_hour: str  # default USD per GPU-hour, a decimal string
    bf16: bool
    fp8: bool
    nvlink: bool
    source: str

    @property
    def memory_gib(self) -> float:
        """The one conversion the planner uses for every GPU: datasheet GB -> GiB."""
        return self.memory_gb * 10**9 / GIB

    @property
    def price(self) -> Decimal:
        return Decimal(self.price_per_hour)

    def supports(self, precision: Precision) -> bool:
        """Whether the GPU runs this weight precision natively (vLLM refuses bf16 below sm_80)."""
        if precision is Precision.BF16:
            return self.bf16
        if precision is Precision.FP8:
            return self.fp8
        return True

    def unsupported_reason(self, precision: Precision) -> str:
        if precision is Precision.BF16:
            return f"{self.name} has no native bf16 (vLLM needs compute capability 8.0); use fp16"
        return f"{self.name} has no native fp8 (needs Ada, Hopper, Blackwell or CDNA 3)"
