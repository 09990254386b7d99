"""`modelplane run`: start the operator (kopf under the hood) with the handlers in `modelplane.handlers`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time

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
    runtime.multi_node_watched = asyncio.run(
        runtime.kube.api_available(LWS_GROUP_VERSION, "leaderworkersets")
    )
    if args.metrics_port:
        start_http_server(args.metrics_port, addr=args.metrics_address, registry=REGISTRY)
    namespaces = list(args.namespace)
    try:
        kopf.run(
            clusterwide=not namespaces,
            namespaces=namespaces,
            liveness_endpoint=args.liveness,
            standalone=True,
            memo=kopf.Memo(runtime=runtime),
            stop_flag=runtime.stop_flag,
        )
    except Exception as err:
        # kopf stops the whole operator when a watch answers 404: a CRD it watched (the
        # LeaderWorkerSet API, when the platform team uninstalls it) went away between kopf's CRD
        # scan and the watch's reconnect. Start again as a fresh process (same PID, same arguments;
        # kopf is not made to run twice in one): its scan then leaves that API out until it returns.
        # The delay lets a CRD that is still terminating finish: a kopf started in that window can
        # fail the same way and then hang instead of exiting (seen with kopf 1.45).
        if not watched_api_vanished(err):
            raise
        logging.getLogger(__name__).warning("a watched API went away (%s); restarting the operator", err)
        time.sleep(RESTART_DELAY_SECONDS)
        os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])
    if runtime.restart_reason:
        logging.getLogger(__name__).warning("%s", runtime.restart_reason)
        time.sleep(1.0)
        os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])
    return 0


LWS_GROUP_VERSION = "leaderworkerset.x-k8s.io/v1"


RESTART_DELAY_SECONDS = 5.0


def watched_api_vanished(err: BaseException) -> bool:
    """Is `err` (or what caused it) kopf's 404 from watching a resource that no longer exists?"""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if type(current).__module__.startswith("kopf.") and getattr(current, "status", None) == 404:
            return True
        current = current.__cause__ or current.__context__
    return False
