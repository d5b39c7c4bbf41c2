"""`segctl run`: start the OpenFlow framework (Ryu or os-ken: segctl/framework.py) with segctl's
app (which does its own signed LLDP link discovery), in the foreground."""

from __future__ import annotations

import logging
import os
import secrets
import signal
import sys
import time

from . import gcpauses
from .config import Sources
from .core.errors import ConfigError
from .core.events import EventLog
from .core.textsafe import PrintableFormatter, printable
from .flowstore import open_for_run
from .state import StateError, state_path

LOOPBACK = ("127.", "::1", "localhost")

LOG = logging.getLogger("segctl.run")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log_handler(stream) -> logging.Handler:
    """The log's one handler: every record, Ryu's included, escaped to one line (a quarantine
    reason, a token or host name, an LDAP value or a request path cannot forge a log line)."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(PrintableFormatter(LOG_FORMAT))
    return handler


def open_events(args, state_dir: str) -> EventLog:
    """STATE_DIR/events.jsonl, rotated by size as the options say."""
    path = os.path.join(state_dir, "events.jsonl")
    return EventLog(path, max_bytes=args.events_max_bytes, keep_files=args.events_keep)


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


def flush_flows_at_exit(runtime) -> None:
    """The decisions not yet in the flow store, written inline (best effort: the process ends)."""
    if runtime.recorder is not None:
        runtime.recorder.run_blocking = lambda function: function()
        runtime.recorder.flush(last=True)


def tls_problem(args) -> str | None:
    """Why the TLS options cannot work, or None."""
    of = [args.of_cert, args.of_key, args.of_ca]
    if any(of) and not all(of):
        return "OpenFlow over TLS needs all of --of-cert, --of-key and --of-ca (switches must authenticate too)"
    if bool(args.api_cert) != bool(args.api_key):
        return "HTTPS for the API needs both --api-cert and --api-key"
    for path in [*of, args.api_cert, args.api_key]:
        if path and not os.access(path, os.R_OK):
            return f"cannot read {path}"
    return None


def run(args) -> int:
    try:
        from . import framework
    except ImportError as exc:  # framework.FrameworkMissing included: SEGCTL_FRAMEWORK names one not installed
        print(f"segctl: cannot load the OpenFlow framework: {exc}", file=sys.stderr)
        return 2
    from .app import OpenFlowSwitches
    from .runtime import Runtime

    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, handlers=[log_handler(sys.stderr)])
    for noisy in (
        "topology.switches",
        "controller.controller",
        "base.app_manager",
        "controller.ofp_handler",
        "lib.hub",
    ):
        logging.getLogger(f"{framework.PACKAGE}.{noisy}").setLevel(logging.WARNING)
    LOG.info(
        "OpenFlow framework: %s %s (SEGCTL_FRAMEWORK=ryu or os-ken chooses)", framework.FRAMEWORK, framework.VERSION
    )
    state_dir = args.state_dir
    problem = tls_problem(args)
    if problem:
        print(f"segctl: {problem}", file=sys.stderr)
        return 2
    os.makedirs(state_dir, exist_ok=True)
    tokens = api_tokens(args, state_dir)
    if tokens is None:
        return 2
    events = open_events(args, state_dir)
    switches = OpenFlowSwitches()
    store = open_for_run(state_dir, args.retention, LOG.warning)

    def start_runtime() -> Runtime:
        sources = Sources(args.directory, args.policy, getattr(args, "pipeline", None))
        return Runtime(sources, events, state_dir, switches, framework.run_blocking, args.audit_interval, store)

    try:
        runtime = start_runtime()
    except ConfigError as exc:
        for config_problem in exc.problems:
            print(printable(config_problem), file=sys.stderr)
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
        runtime = start_runtime()

    manager = framework.app_manager.AppManager.get_instance()
    manager.load_apps(["segctl.app"])
    conf = framework.cfg.CONF
    conf(args=[], project=framework.PACKAGE)
    conf.set_override("ofp_tcp_listen_port", args.of_port)
    conf.set_override("ofp_listen_host", args.of_host)
    if args.of_cert:
        # Ryu always opens a plain listener; with TLS on, park it on a Unix socket in the state
        # folder, where no switch can reach it, and serve TLS on the OpenFlow port ourselves.
        parked = os.path.join(os.path.abspath(state_dir), "openflow-plain.sock")
        if os.path.exists(parked):
            os.unlink(parked)
        conf.set_override("ofp_listen_host", parked)
    contexts = manager.create_contexts()
    contexts["segctl_runtime"] = runtime
    contexts["segctl_switches"] = switches
    services = manager.instantiate_apps(**contexts)
    # What startup built is frozen out of the collector's walks, and what lives through each
    # full collection too: its pauses follow what changed, not what is alive (segctl.gcpauses).
    gcpauses.keep_pauses_short()
    framework.hub.spawn(gcpauses.sweep_forever, framework.hub.sleep)

    def stop(signum, _frame):
        LOG.info("signal %d: stopping", signum)
        events.close()
        flush_flows_at_exit(runtime)
        logging.shutdown()
        os._exit(0)

    def reload(_signum, _frame):
        framework.hub.spawn(lambda: LOG.info("reload: %s", runtime.reload(by="SIGHUP")))

    if args.of_cert:
        context = framework.tls_server_context(args.of_cert, args.of_key, args.of_ca)
        server = framework.listen(args.of_host, args.of_port)
        framework.hub.spawn(framework.serve_openflow_tls, server, context, LOG)
    if args.api_port:
        from .api import Api

        api_tls = framework.tls_server_context(args.api_cert, args.api_key) if args.api_cert else None
        api_server = framework.listen(args.api_host, args.api_port)
        framework.hub.spawn(framework.serve_wsgi, api_server, Api(runtime, tokens), api_tls)
        scheme = "https" if api_tls else "http"
        LOG.info("REST API on %s://%s:%d/v1", scheme, args.api_host, args.api_port)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, reload)
    c = runtime.controller
    LOG.info(
        "segctl listening for OpenFlow%s on %s:%d; %d hosts, %d rules, mode %s",
        " over TLS" if args.of_cert else "",
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
        events.close()  # (the records of the last tenth of a second are written when flushed)
    return 0
