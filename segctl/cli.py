"""The `segctl` command line."""

from __future__ import annotations

import argparse
import sys

from .config import Sources, load_sources
from .core.audit import AUDIT_INTERVAL
from .core.decision import DecisionIndex
from .core.durations import parse_duration
from .core.errors import ConfigError
from .core.events import KEEP_FILES, MAX_BYTES
from .core.explain import explain_first_packet
from .core.flowlog import VERDICTS
from .core.flowmap import parse_by
from .core.policy import ICMP_TYPES, PIPELINES
from .core.suggest import MAX_PORTS, parse_selector
from .core.textsafe import printable
from .core.verdict import Allow, Deny


def _print_problems(exc: ConfigError) -> int:
    for problem in exc.problems:
        print(printable(problem))  # an LDAP DN or value may hold a newline
    return 1


def cmd_check(args) -> int:
    try:
        directory, policy = load_sources(Sources(args.directory, args.policy))
    except ConfigError as exc:
        return _print_problems(exc)
    print(
        f"ok: {len(directory)} hosts, {len(policy.groups)} groups, {len(policy.rules)} rules, mode {policy.mode}",
        file=sys.stderr,
    )
    return 0


def cmd_explain(args) -> int:
    def warn(problem) -> None:
        print(f"warning: entry left out: {printable(problem)}", file=sys.stderr)

    try:
        directory, policy = load_sources(Sources(args.directory, args.policy), warn=warn)
    except ConfigError as exc:
        return _print_problems(exc)
    hosts = []
    for name in (args.src, args.dst):
        host = directory.find(name)
        if host is None:
            print("deny")
            print(f"{name} is not in the directory: an unknown host gets nothing forwarded")
            return 0
        hosts.append(host)
    src, dst = hosts
    index = DecisionIndex(policy)
    proto = args.proto
    if args.port is not None and proto not in ("tcp", "udp"):
        print(f"segctl explain: --port applies to tcp or udp, not {proto}", file=sys.stderr)
        return 2
    if proto == "icmp":
        icmp_type = ICMP_TYPES.get(args.icmp_type, int(args.icmp_type) if args.icmp_type.isdigit() else -1)
        if not 0 <= icmp_type <= 255:
            print(f"segctl explain: --icmp-type {args.icmp_type!r} is not 0-255 or a type name", file=sys.stderr)
            return 2
        args.port = icmp_type
    if proto in ("tcp", "udp") and args.port is None:
        # No port given: say whether any port of this protocol is open, and by which rule.
        rules = [r for r in index.peers(src.labels, dst.labels) if r.proto in (proto, "any")]
        if rules:
            print("allow")
            print(f"rule {rules[0].describe()} (some {proto} ports; give --port to check one)")
        else:
            print("deny")
            print(index.explain(src.labels, dst.labels, proto, 0).reason.replace(f"{proto}/0", proto))
        return 0
    verdict = explain_first_packet(directory, policy, src, dst, proto, args.port)
    if isinstance(verdict, Deny):
        print("deny")
        print(verdict.reason)
    elif not isinstance(verdict, Allow):  # (a ledger of two attached hosts holds nothing else)
        print("deny")
        print(f"not forwarded: {type(verdict).__name__.lower()}")
    elif verdict.rule is None:  # a monitored destination: forwarded though no rule allows it
        print("allow")
        monitored = f"{dst.name} is in monitor mode{_mode_origin(policy, dst)}"
        print(f"{monitored}: forwarded and logged; enforced, it would be denied:")
        print(index.explain(src.labels, dst.labels, proto, args.port).reason)
    else:
        print("allow")
        print(f"rule {verdict.rule.describe()}")
        if not verdict.enforced:
            print(f"{dst.name} is in monitor mode{_mode_origin(policy, dst)}: its connections are logged, not enforced")
    return 0


def _mode_origin(policy, host) -> str:
    """Why a host's mode is what it is: the groups that set it, or the policy's default."""
    groups = [
        name for name, mode in policy.modes.items() if mode == "monitor" and policy.groups[name].matches(host.labels)
    ]
    return f" (modes: {', '.join(groups)})" if groups else " (the policy's mode)"


def cmd_client(args) -> int:
    from .client import run_client

    return run_client(args)


def cmd_replay(args) -> int:
    from .whatif import run_replay

    return run_replay(args)


def cmd_run(args) -> int:
    from .launch import run

    return run(args)


def cmd_import_events(args) -> int:
    from .eventimport import run_import

    return run_import(args)


def duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def whole_number(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number (0 or more)")
    return int(text)


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 86400:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds from 0 to 86400")
    return value


def checked(parse, what: str):
    """An argparse type that keeps the text as given once `parse` accepts it."""

    def check(text: str) -> str:
        try:
            parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return text

    check.__name__ = what  # argparse names the type in its message: "invalid duration value"
    return check


def at_least_one(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 1 or more")
    return int(text)


def top_count(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 100:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number from 1 to 100")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="segctl", description="Zero-trust microsegmentation controller for OpenFlow 1.3 networks."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def sources(p):
        p.add_argument(
            "--directory",
            required=True,
            help="directory YAML file, LDAP settings YAML (top-level ldap:), or ldap://HOST[:PORT]/BASE-DN",
        )
        p.add_argument("--policy", required=True, help="policy YAML file or folder of them")

    run = sub.add_parser("run", help="run the controller in the foreground")
    sources(run)
    run.add_argument("--of-port", type=int, default=6653, help="OpenFlow listen port (6653)")
    run.add_argument("--of-host", default="0.0.0.0", help="OpenFlow listen address (0.0.0.0)")
    run.add_argument("--api-host", default="127.0.0.1", help="REST API address (127.0.0.1)")
    run.add_argument("--api-port", type=int, default=8080, help="REST API port (8080); 0 turns it off")
    run.add_argument("--api-token-file", help="bearer tokens, one per line: TOKEN or NAME:TOKEN")
    run.add_argument("--of-cert", help="OpenFlow over TLS: the controller's certificate (PEM)")
    run.add_argument("--of-key", help="OpenFlow over TLS: its private key")
    run.add_argument("--of-ca", help="OpenFlow over TLS: CA that signed the switches' certificates")
    run.add_argument("--api-cert", help="serve the REST API over HTTPS with this certificate (PEM)")
    run.add_argument("--api-key", help="... and this private key")
    run.add_argument("--state-dir", default="/var/lib/segctl")
    run.add_argument(
        "--events-max-bytes",
        type=whole_number,
        default=MAX_BYTES,
        metavar="BYTES",
        help=f"rotate STATE_DIR/events.jsonl before it passes this size ({MAX_BYTES >> 20} MiB); 0 never rotates",
    )
    run.add_argument(
        "--events-keep",
        type=whole_number,
        default=KEEP_FILES,
        metavar="N",
        help=f"rotated events files kept, events.jsonl.1 (newest) to .N ({KEEP_FILES})",
    )
    run.add_argument(
        "--audit-interval",
        type=seconds,
        default=AUDIT_INTERVAL,
        metavar="SECONDS",
        help=f"read each switch's flow table this often and remove what segctl did not put there "
        f"({AUDIT_INTERVAL:g}); 0 turns the audit off",
    )
    run.add_argument(
        "--retention",
        type=duration,
        default="7d",
        metavar="DURATION",
        help="record every decision into STATE_DIR/flows.sqlite and keep this long (7d); 0 turns recording off",
    )
    run.add_argument(
        "--pipeline",
        choices=PIPELINES,
        help="how allowed connections are set up, over the policy's `pipeline` (reactive: exact entries per "
        "connection; stateful: per service, the switches' connection trackers keep its connections; auto: "
        "stateful on switches that track connections)",
    )
    run.add_argument(
        "--discard-state", action="store_true", help="set an unreadable state file aside and start with no quarantine"
    )
    run.add_argument("--verbose", "-v", action="store_true")
    run.set_defaults(func=cmd_run)

    check = sub.add_parser("check", help="validate a directory and a policy")
    sources(check)
    check.set_defaults(func=cmd_check)

    explain = sub.add_parser("explain", help="would the policy allow SRC to reach DST?")
    sources(explain)
    explain.add_argument("src", metavar="SRC", help="host name or MAC")
    explain.add_argument("dst", metavar="DST", help="host name or MAC")
    explain.add_argument("--proto", choices=("tcp", "udp", "icmp"), default="tcp")
    explain.add_argument("--port", type=int)
    explain.add_argument(
        "--icmp-type", default="echo-request", help="with --proto icmp: a type name or number (default echo-request)"
    )
    explain.set_defaults(func=cmd_explain)

    imports = sub.add_parser("import-events", help="load events.jsonl files into a flow store")
    imports.add_argument("files", nargs="+", metavar="FILE", help="events.jsonl, a rotated events.jsonl.N, or .gz")
    imports.add_argument("--store", default="/var/lib/segctl/flows.sqlite", help="the flow store (%(default)s)")
    imports.add_argument("--directory", help="label the hosts as this directory does (YAML file or LDAP)")
    imports.add_argument(
        "--retention", type=duration, default="7d", metavar="DURATION", help="keep decisions this recent (7d)"
    )
    imports.add_argument("--force", action="store_true", help="import a file even if this store has it already")
    imports.set_defaults(func=cmd_import_events)

    def client(name, help_text):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--api", help="API URL (default $SEGCTL_API or http://127.0.0.1:8080)")
        p.add_argument("--api-token-file", help="default $SEGCTL_API_TOKEN_FILE or /var/lib/segctl/api-token")
        p.add_argument("--api-ca", help="CA to verify an https:// API with (default $SEGCTL_API_CA, else the system's)")
        p.add_argument("--json", action="store_true", help="print the API's JSON")
        p.set_defaults(func=cmd_client)
        return p

    client("hosts", "known hosts and their state").add_argument("host", nargs="?", metavar="HOST")
    client("flows", "connections allowed now")
    client("audit", "each switch's last flow-table audit")
    client("events", "latest decisions and actions").add_argument("--limit", type=int, default=50)
    quarantine = client("quarantine", "cut a host off on every switch")
    quarantine.add_argument("host", metavar="HOST", help="directory name or MAC")
    quarantine.add_argument("--reason", required=True)
    client("release", "end a quarantine").add_argument("host", metavar="HOST")
    reach = client("reach", "blast radius: the hosts HOST may open connections to, hop by hop")
    reach.add_argument("host", metavar="HOST", help="directory name or MAC")
    reach.add_argument("--hops", type=int, default=1, help="how many connections deep (1-10; 1)")
    reach.add_argument("--to", action="store_true", help="the reverse: who may open connections to HOST")
    reach.add_argument("--since", metavar="DURATION", help="flows seen in this window only (24h, 7d; all recorded)")
    reach.add_argument(
        "--dot", action="store_true", help="a Graphviz graph of it (segctl reach web1 --dot | dot -Tsvg)"
    )
    client("health", "controller status")
    client("reload", "re-read the directory and policy")

    def recorded(name, help_text):
        p = client(name, help_text)
        p.add_argument("--store", metavar="PATH", help="read this flow store file here instead of asking the API")
        p.add_argument("--directory", help="with --store: the directory file whose labels group the hosts now")
        keys = checked(parse_by, "label keys")
        p.add_argument("--by", type=keys, default="role", metavar="KEY[,KEY]", help="label keys grouping hosts (role)")
        p.add_argument(
            "--since",
            type=checked(parse_duration, "duration"),
            metavar="DURATION",
            help="flows seen in the last 90s, 30m, 24h, 7d, 2w... (default: all recorded)",
        )
        return p

    flow_map = recorded("map", "recorded flows between groups of hosts and what the policy does with them")
    flow_map.add_argument("--policy", help="with --store: the policy to judge the flows by (none: no status)")
    flow_map.add_argument("--verdict", choices=VERDICTS, help="only flows that were allowed, monitored or denied")
    flow_map.add_argument("--dot", action="store_true", help="Graphviz DOT, for `dot -Tsvg`")
    draft = recorded("suggest", "a draft policy allowing the recorded flows, YAML on stdout")
    draft.add_argument("--min-flows", type=at_least_one, default=1, metavar="N", help="rule a service seen N times (1)")
    draft.add_argument(
        "--exclude",
        action="append",
        default=[],
        type=checked(parse_selector, "selector"),
        metavar="SELECTOR",
        help="leave out hosts matching role=scanner[,env=dev]; repeatable",
    )
    draft.add_argument(
        "--merge-gap", type=whole_number, default=0, metavar="N", help="join ports at most N unseen ports apart (0)"
    )
    draft.add_argument(
        "--max-ports",
        type=whole_number,
        default=MAX_PORTS,
        metavar="N",
        help=f"list, not rule, two groups seen on more than N ports of a protocol: a scan? ({MAX_PORTS}; 0: no limit)",
    )
    replay = client("replay", "what-if: recorded flows decided by the running policy and by a draft")
    replay.add_argument(
        "--policy", required=True, metavar="DRAFT", help="the draft policy: a YAML file (a folder offline)"
    )
    replay.add_argument("--store", metavar="PATH", help="replay offline from this flow store file, not the API")
    replay.add_argument("--directory", help="offline: current labels from this directory (else as recorded)")
    replay.add_argument("--since", type=duration, default=86400.0, metavar="DURATION", help="flows of the last 24h")
    replay.add_argument("--top", type=top_count, default=10, metavar="N", help="top host pairs listed per rule (10)")
    replay.set_defaults(func=cmd_replay)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
