"""`python -m bench [pure|operator|all]`: run benchmarks and print their figures.

pure (the default): the planner and the pure reconcile, no cluster needed.
operator: the operator against the local cluster in $MODELPLANE_RUN (started with hack/up when
          none answers, and stopped again afterwards).
all: both.
"""

from __future__ import annotations

import argparse

from . import operator_writes, planner, reconcile


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("which", nargs="?", default="pure", choices=["pure", "operator", "all"])
    parser.add_argument("--count", type=int, default=20, help="operator: ModelDeployments to apply")
    parser.add_argument("--idle-seconds", type=float, default=30.0, help="operator: the idle window")
    args = parser.parse_args()
    if args.which in ("pure", "all"):
        planner.run()
        reconcile.run()
    if args.which in ("operator", "all"):
        operator_writes.run(count=args.count, idle_seconds=args.idle_seconds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
