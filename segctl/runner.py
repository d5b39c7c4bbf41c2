"""`segctl run`: start Ryu with segctl's app (which does its own signed LLDP link discovery),
in the foreground."""

from __future__ import annotations

import logging
import os
import secrets
import signal
import sys
import time

from .config import Sources
from .core.errors import ConfigError
from .core.events import EventLog
from .state import StateError, state_path

LOOPBACK = ("127.", "::1", "localhost")

LOG = logging.getLogger("segctl.run")


def api_tokens(args, state_dir: str) -> dict | None:
    """The API's tokens: from --api-token-file, or (loopback only) a generated one saved as
    STATE_DIR/api-token for the local CLI. None, after saying why, when the API must not start."""
    from .api import load_tokens

    if args.api_token_file:
        try:
            return load_tokens(args.api_token_file)
        except (OSError, ValueError) as exc:
            print(f"segctl: {exc}", file=sys.stderr)
            return None
    if args.api_port and not args.api_host.startswith(LOOPBACK):
        print(f"segctl: refusing to serve the API on {args.api_host} without --api-token-file", file=sys.stderr)
        return None
    path = os.path.join(state_dir, "api-token")
    if not os.path.exists(path):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(f"local:{secrets.token_urlsafe(32)}\n")
    LOG.info("API token for the local CLI: %s", path)
    return load_tokens(path)


def run(args) -> int:
    from . import framework
    from .runtime import Runtime

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in (
        "ryu.topology.switches",
        "ryu.controller.controller",
        "ryu.base.app_manager",
        "ryu.controller.ofp_handler",
        "os_ken.topology.switches",
        "ryu.lib.hub",
        "os_ken.lib.hub",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    state_dir = args.state_dir
    os.makedirs(state_dir, exist_ok=True)
    tokens = api_tokens(args, state_dir)
    if tokens is None:
        return 2
    events = EventLog(os.path.join(state_dir, "events.jsonl"))
    try:
        runtime = Runtime(Sources(args.directory, args.policy), events, state_dir)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    except StateError as exc:
        if not args.discard_state:
            print(
                f"segctl: {exc}\nsegctl: refusing to start: the quarantine list in it would be lost. "
                "Restore the file, or start with --discard-state to set it aside and start empty.",
                file=sys.stderr,
            )
            return 1
        aside = f"{state_path(state_dir)}.discarded-{int(time.time())}"
        os.replace(state_path(state_dir), aside)
        LOG.warning("%s; set aside as %s, starting with no quarantine", exc, aside)
        runtime = Runtime(Sources(args.directory, args.policy), events, state_dir)

    manager = framework.app_manager.AppManager.get_instance()
    manager.load_apps(["segctl.app"])
    conf = framework.cfg.CONF
    conf(args=[], project="ryu")
    conf.set_override("ofp_tcp_listen_port", args.of_port)
    conf.set_override("ofp_listen_host", args.of_host)
    contexts = manager.create_contexts()
    contexts["segctl_runtime"] = runtime
    services = manager.instantiate_apps(**contexts)

    def stop(signum, _frame):
        LOG.info("signal %d: stopping", signum)
        events.close()
        logging.shutdown()
        os._exit(0)

    def reload(_signum, _frame):
        framework.hub.spawn(lambda: LOG.info("reload: %s", runtime.reload(by="SIGHUP")))

    if args.api_port:
        from .api import Api

        server = framework.hub.WSGIServer((args.api_host, args.api_port), Api(runtime, tokens))
        framework.hub.spawn(server.serve_forever)
        LOG.info("REST API on http://%s:%d/v1", args.api_host, args.api_port)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, reload)
    c = runtime.controller
    LOG.info(
        "segctl listening for OpenFlow on %s:%d; %d hosts, %d rules, mode %s",
        args.of_host,
        args.of_port,
        len(c.directory),
        len(c.policy.rules),
        c.policy.mode,
    )
    try:
        framework.hub.joinall(services)
    finally:
        manager.close()
    return 0
