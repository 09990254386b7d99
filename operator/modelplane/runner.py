"""`modelplane run`: start the operator (kopf under the hood) with the handlers in `modelplane.handlers`."""

from __future__ import annotations

import argparse
import logging
import os

from .config import OperatorConfig, load_config_file


def add_run_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="run the operator", description="Run the Modelplane operator.")
    scope = p.add_mutually_exclusive_group()
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace (default)")
    scope.add_argument(
        "-n", "--namespace", action="append", default=[], metavar="NS", help="watch only NS (repeatable)"
    )
    p.add_argument("--config", metavar="FILE", help="operator configuration (YAML): images, prices, defaults")
    p.add_argument("--kubeconfig", metavar="FILE", help="kubeconfig (default: in-cluster, then KUBECONFIG)")
    p.add_argument(
        "--liveness",
        metavar="URL",
        default=None,
        help="serve kopf's liveness probe, e.g. http://0.0.0.0:8080/healthz",
    )
    p.add_argument(
        "--metrics-port", type=int, default=0, help="serve Prometheus metrics on this port (0: off)"
    )
    p.add_argument("--metrics-address", default="127.0.0.1", help="address for the metrics server")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> int:
    if args.kubeconfig:
        # Before anything imports the kubernetes client: it reads KUBECONFIG once, at import,
        # and kopf's own login goes through it.
        os.environ["KUBECONFIG"] = args.kubeconfig
    # Imported here: `modelplane plan` must work without a cluster or kopf's machinery.
    import kopf
    from prometheus_client import start_http_server

    from . import handlers  # noqa: F401  (registers the handlers with kopf)
    from .handlers import Runtime
    from .kube import Kube, load_api_client
    from .metrics import REGISTRY

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    config = load_config_file(args.config) if args.config else OperatorConfig()
    api_client = load_api_client(args.kubeconfig or os.environ.get("KUBECONFIG"))
    runtime = Runtime(config=config, kube=Kube(api_client))
    if args.metrics_port:
        start_http_server(args.metrics_port, addr=args.metrics_address, registry=REGISTRY)
    namespaces = list(args.namespace)
    kopf.run(
        clusterwide=not namespaces,
        namespaces=namespaces,
        liveness_endpoint=args.liveness,
        standalone=True,
        memo=kopf.Memo(runtime=runtime),
    )
    return 0
