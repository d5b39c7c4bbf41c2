"""`segctl run`: start Ryu with segctl's app and LLDP link discovery, in the foreground."""

from __future__ import annotations

import logging
import os
import signal
import sys

from .config import Sources
from .core.errors import ConfigError
from .core.events import EventLog

LOG = logging.getLogger("segctl.run")


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
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    state_dir = args.state_dir
    os.makedirs(state_dir, exist_ok=True)
    events = EventLog(os.path.join(state_dir, "events.jsonl"))
    try:
        runtime = Runtime(Sources(args.directory, args.policy), events)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1

    manager = framework.app_manager.AppManager.get_instance()
    manager.load_apps([framework.SWITCHES_APP, "segctl.app"])
    conf = framework.cfg.CONF
    conf(args=[], project="ryu")
    conf.set_override("ofp_tcp_listen_port", args.of_port)
    conf.set_override("ofp_listen_host", args.of_host)
    conf.set_override("observe_links", True)
    conf.set_override("explicit_drop", False)
    contexts = manager.create_contexts()
    contexts["segctl_runtime"] = runtime
    services = manager.instantiate_apps(**contexts)

    def stop(signum, _frame):
        LOG.info("signal %d: stopping", signum)
        events.close()
        logging.shutdown()
        os._exit(0)

    def reload(_signum, _frame):
        framework.hub.spawn(lambda: LOG.info("reload: %s", runtime.reload()))

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
