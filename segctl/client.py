"""The CLI side of the REST API: `segctl hosts|flows|events|quarantine|release|health|reload|map|suggest`."""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

from .core.textsafe import key_values, printable

DEFAULT_API = "http://127.0.0.1:8080"
DEFAULT_TOKEN_FILE = "/var/lib/segctl/api-token"


class ClientError(Exception):
    pass


def read_token(path: str | None) -> str | None:
    path = path or os.environ.get("SEGCTL_API_TOKEN_FILE") or DEFAULT_TOKEN_FILE
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                line = line.split("#", 1)[0].strip()
                if line:
                    return line.rpartition(":")[2]
    except OSError as exc:
        if path != DEFAULT_TOKEN_FILE:
            raise ClientError(f"cannot read the token file: {exc}") from None
    return None


def call(
    args, method: str, path: str, body: dict | None = None, yaml_text: str | None = None, timeout: float = 30
) -> tuple[int, dict]:
    """(status, JSON answer) of one API call; `yaml_text` is sent as an application/yaml body."""
    base = (args.api or os.environ.get("SEGCTL_API") or DEFAULT_API).rstrip("/")
    data = json.dumps(body).encode() if body is not None else None
    if yaml_text is not None:
        data = yaml_text.encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    token = read_token(args.api_token_file)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/yaml" if yaml_text is not None else "application/json")
    context = None
    ca = getattr(args, "api_ca", None) or os.environ.get("SEGCTL_API_CA")
    if ca:
        import ssl

        context = ssl.create_default_context(cafile=ca)
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"{}")
        except ValueError:
            return exc.code, {"error": exc.reason}
    except (urllib.error.URLError, OSError) as exc:
        raise ClientError(f"cannot reach the segctl API at {base}: {exc}") from None


def table(rows: list[list], header: list[str]) -> str:
    # Escaped: a value holding a newline would otherwise print a row of its own.
    text = [[printable("-" if v is None else v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in text + [header]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(fmt.format(*r).rstrip() for r in [header] + text)


def _labels(labels: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _location(location) -> str | None:
    return f"{location['dpid']}/{location['port']}" if location else None


def render(command: str, body: dict, dot: bool = False) -> str:
    """What the CLI prints for COMMAND's answer. User values (reasons, names, labels, errors) are
    escaped (`printable`): each prints on its own line and forges none."""
    if command == "hosts":
        rows = [
            [h["name"], h["mac"], h["ip"], h["state"], _location(h["location"]), _labels(h["labels"])]
            for h in body["hosts"]
        ]
        return table(rows, ["NAME", "MAC", "IP", "STATE", "AT", "LABELS"])
    if command == "flows":
        rows = [
            [
                f["src"],
                f["dst"],
                f["proto"],
                f.get("src_port"),
                f.get("dst_port"),
                f["rule"] or "(monitor)",
                ",".join(map(str, f["switches"])),
            ]
            for f in body["flows"]
        ]
        return table(rows, ["SRC", "DST", "PROTO", "SPORT", "DPORT", "RULE", "SWITCHES"])
    if command == "audit":
        rows = [[s["dpid"], _time(s["time"]), s["entries"], s["findings"]] for s in body["switches"]]
        lines = [table(rows, ["SWITCH", "LAST AUDIT", "ENTRIES", "FINDINGS"])]
        for s in body["switches"]:
            drift = s["last_drift"]
            if drift is not None:
                lines.append(
                    f"switch {s['dpid']}, last drift at {_time(drift['time'])} ({drift['findings']} finding(s)):"
                )
                lines += [f"  {printable(f['action'])}: {printable(f['entry'])}" for f in drift["examples"]]
        every = f"every {body['interval']:g} s" if body["interval"] else "off"
        return "\n".join(lines + [f"audit {every}; {body['drift_findings']} finding(s) since the start"])
    if command == "events":
        rows = []
        for e in body["events"]:
            what = key_values({k: v for k, v in e.items() if k not in ("time", "kind")})
            rows.append([_time(e["time"]), e["kind"], what])
        return table(rows, ["TIME", "KIND", "DETAILS"])
    if command == "quarantine":
        s = body.get("switches", {})
        return (
            f"{printable(body['host'])} ({body['mac']}) quarantined: {printable(body['reason'])}\n"
            f"confirmed by switches {s.get('confirmed')} in {body.get('seconds')} s"
            + (f"; NOT confirmed by {s['unconfirmed']}" if s.get("unconfirmed") else "")
        )
    if command == "release":
        return f"{printable(body['released'])} released; confirmed by switches {body['switches']['confirmed']}"
    if command == "reload":
        return (
            f"reloaded: {body['hosts']} hosts, {body['rules']} rules, mode {body['mode']}; "
            f"{body['revoked']} connection(s) revoked"
        )
    if command == "reach":
        from .reachshow import reach_dot, reach_text

        return reach_dot(body) if dot else reach_text(body)
    if command == "map":
        from .mapview import map_table

        return map_table(body)
    if command == "suggest":
        return body["draft"].rstrip("\n")
    if command == "health":
        return (
            f"{body['status']}: mode {body['mode']}, switches {body['switches']}, {body['links']} links, "
            f"{body['hosts_bound']}/{body['hosts']} hosts bound, {body['connections']} connections, "
            f"{body['quarantined']} quarantined, {body['packet_ins']} packet-ins, up {body['uptime']} s\n"
            + _directory_line(body.get("directory") or {})
        )
    return json.dumps(body, indent=2, sort_keys=True)


def _directory_line(directory: dict) -> str:
    line = f"directory {printable(directory.get('source'))}: {directory.get('status')}, {directory.get('hosts')} hosts"
    if directory.get("last_read_age") is not None:
        line += f", read {directory['last_read_age']} s ago (ttl {directory.get('ttl')} s)"
    if directory.get("entries_left_out"):
        line += f", {directory['entries_left_out']} entries left out"
    if directory.get("last_error"):
        line += f"; last error: {printable(directory['last_error'])}"
    return line


def _time(stamp: float) -> str:
    import time

    return time.strftime("%H:%M:%S", time.localtime(stamp)) + f".{int(stamp % 1 * 1000):03d}"


def run_client(args) -> int:
    command = args.command
    quote = lambda text: urllib.parse.quote(text, safe="")  # noqa: E731
    try:
        if command == "hosts":
            status, body = call(args, "GET", "/v1/hosts" + (f"/{quote(args.host)}" if args.host else ""))
            if status == 200 and args.host:
                body = {"hosts": [body]}
        elif command == "flows":
            status, body = call(args, "GET", "/v1/flows")
        elif command == "audit":
            status, body = call(args, "GET", "/v1/audit")
        elif command == "events":
            status, body = call(args, "GET", f"/v1/events?limit={args.limit}")
        elif command == "quarantine":
            status, body = call(args, "POST", "/v1/quarantine", {"host": args.host, "reason": args.reason})
        elif command == "release":
            status, body = call(args, "DELETE", f"/v1/quarantine/{quote(args.host)}")
        elif command == "reload":
            status, body = call(args, "POST", "/v1/policy/reload")
        elif command == "reach":
            query = {"hops": args.hops, "direction": "to" if args.to else "from"}
            query.update({"since": args.since} if args.since else {})
            status, body = call(args, "GET", f"/v1/hosts/{quote(args.host)}/reach?{urllib.parse.urlencode(query)}")
        elif command in ("map", "suggest") and args.store:
            from .offline import offline_answer

            status, body = offline_answer(args)
        elif command == "map":
            query = {"by": args.by, "since": args.since, "verdict": args.verdict}
            status, body = call(args, "GET", "/v1/map?" + urllib.parse.urlencode({k: v for k, v in query.items() if v}))
        elif command == "suggest":
            options = {
                "by": args.by,
                "since": args.since,
                "min_flows": args.min_flows,
                "merge_gap": args.merge_gap,
                "max_ports": args.max_ports,
            }
            options = {k: v for k, v in options.items() if v is not None}
            status, body = call(args, "POST", "/v1/policy/suggest", dict(options, exclude=args.exclude))
        else:
            status, body = call(args, "GET", "/v1/health")
    except ClientError as exc:
        print(f"segctl: {exc}", file=sys.stderr)
        return 1
    if status >= 400:
        print(f"segctl: {printable(body.get('error', status))}", file=sys.stderr)
        for problem in body.get("errors", []):
            print(printable(problem), file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(body, indent=2, sort_keys=True))
    elif command == "map" and args.dot:
        from .mapview import map_dot

        print(map_dot(body))
    else:
        print(render(command, body, getattr(args, "dot", False)))
    if command == "suggest":
        print(_coverage_line(body), file=sys.stderr)
    return 0


def _coverage_line(body: dict) -> str:
    """What `segctl suggest` says on stderr, so that `> draft.yaml` keeps the draft alone."""
    c = body["coverage"]
    return (
        f"draft: {body['groups']} group(s), {body['rules']} rule(s); allows {c['allowed']} of {c['observed']} "
        f"connections observed ({c['percent']}%), {c['forwarded_allowed']} of {c['forwarded']} forwarded"
    )
