"""The OpenAPI 3 description of the REST API, served at GET /v1/openapi.json.

The response schemas list the fields every answer carries as required (an answer may carry
more), so that tests/unit/test_schema_fuzz.py catches an answer that drifts from this document."""

from __future__ import annotations

from . import __version__
from .core.durations import LONGEST
from .core.reach import MAX_HOPS

_ERROR = {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _ok(schema: dict, description: str = "ok") -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _obj(**properties) -> dict:
    """An object that always carries these properties."""
    return {"type": "object", "required": sorted(properties), "properties": properties}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _array(items: dict) -> dict:
    return {"type": "array", "items": items}


_AUDIT = {  # one switch's audit
    "dpid": {"type": "integer"},
    "time": {"type": "number"},
    "entries": {"type": "integer"},
    "findings": {"type": "integer"},
    "examples": _array(_obj(entry={"type": "string"}, action={"type": "string"})),
}


def _answers(*errors: str, **answers: dict) -> dict:
    """Responses: the given ones, the listed error statuses, and 400, which any call gets for a
    URL that is not UTF-8 or for a query parameter it does not take."""
    return {**answers, **{status: _ERROR for status in ("400", *errors)}}


_INTEGERS = _array({"type": "integer"})
_FLOW_STORE = {  # GET /v1/health's flow_store: the recording of every decision (README: "The flow store")
    "type": "object",
    "required": ["status"],
    "description": "status off: --retention 0; failing: see error (decisions are still enforced)",
    "properties": {
        "status": {"type": "string", "enum": ["ok", "failing", "off"]},
        "path": {"type": "string"},
        "retention": {"type": "number", "description": "seconds"},
        "edge_rows": {"type": "integer", "description": "per-edge sums kept, one row per edge and hour"},
        "decisions": {"type": "integer", "description": "raw decisions kept"},
        "oldest": {"type": "number", "nullable": True, "description": "time of the oldest raw decision"},
        "bytes": {"type": "integer"},
        "pending": {"type": "integer", "description": "decisions waiting for the next write (about 1 s)"},
        "written": {"type": "integer", "description": "since the start"},
        "lost": {"type": "integer", "description": "decisions a failed write could not record"},
        "error": {"type": "string", "nullable": True},
    },
}
_LOCATION = _obj(dpid={"type": "integer"}, port={"type": "integer"})
_HOST_PARAM = {
    "name": "host",
    "in": "path",
    "required": True,
    "description": "directory name or MAC address",
    "schema": {"type": "string", "minLength": 1},
    "example": "web1",
}
_RANGES = {"type": "array", "nullable": True, "items": _array({"type": "integer"})}
_REACHED = _obj(
    host={"type": "string"},
    labels={"type": "object", "additionalProperties": {"type": "string"}},
    hop={"type": "integer", "minimum": 1},
    via={"type": "string", "description": "the host one hop nearer: reached from it, or (direction to) reaching it"},
    services=_array(
        _obj(
            rule={"type": "string"},
            proto={"type": "string"},
            ports=dict(_RANGES, description="inclusive [low, high] ranges; null: every port"),
            icmp_types=dict(_RANGES, description="icmp and any rules: the types allowed"),
            text={"type": "string"},
        )
    ),
    monitored={"type": "boolean", "description": "the destination is in monitor mode: every service is forwarded"},
    attached={"type": "boolean"},
    seen={
        "type": "array",
        "nullable": True,
        "description": "recorded forwarded flows between HOST and this host; null beyond the first hop, "
        "and null when no flows are recorded (flows_recorded false)",
        "items": _obj(
            proto={"type": "string"},
            port={"type": "integer", "nullable": True},
            flows={"type": "integer"},
            last_seen={"type": "number"},
            verdict={"type": "string"},
            rule={"type": "string", "nullable": True},
        ),
    },
)
_COUNT = {"type": "integer", "minimum": 0}
_OUTCOMES = {kind: _COUNT for kind in ("allow", "monitor", "deny")}
_MAP_NODE = _obj(
    id={"type": "string"},
    label={"type": "string"},
    known={"type": "boolean", "description": "false: a host not in the directory, a node of its own"},
    labels={"type": "object", "nullable": True, "additionalProperties": {"type": "string", "nullable": True}},
    hosts=_array({"type": "string"}),
)
_MAP_EDGE = _obj(
    src={"type": "string"},
    dst={"type": "string"},
    proto={"type": "string", "enum": ["tcp", "udp", "icmp", "other"]},
    port={"type": "integer", "nullable": True, "description": "destination port; ICMP: the type"},
    flows=_COUNT,
    pairs=_COUNT,
    first_seen={"type": "number"},
    last_seen={"type": "number"},
    observed=_obj(allowed=_COUNT, monitored=_COUNT, denied=_COUNT),
    policy=dict(
        _obj(**_OUTCOMES, status={"type": "string", "enum": ["allow", "monitor", "deny", "mixed"]}),
        nullable=True,
        description="host pairs per outcome of the current policy (monitor: would be denied once enforced)",
    ),
)
# A window the API takes: whole units, at most what durations.LONGEST (ten years) allows of each.
SINCE_PATTERN = "^([1-9][0-9]{0,7}s?|[1-9][0-9]{0,5}m|[1-9][0-9]{0,3}h|[1-9][0-9]{0,2}d|[1-9][0-9]?w)$"
_DURATION_TEXT = {"type": "string", "pattern": SINCE_PATTERN, "example": "24h"}
# Label keys `role,app`: some key that is not blank. A selector `role=scanner,env=dev`.
_BY_TEXT = {"type": "string", "pattern": "[^, \\t]", "maxLength": 1000, "example": "role,app"}
_SELECTOR_PART = "[^,=]*[^,= \\t][^,=]*=[^,]*"
_SELECTOR_TEXT = {"type": "string", "pattern": f"^{_SELECTOR_PART}(,{_SELECTOR_PART})*$", "maxLength": 1000}
_SUGGEST_BODY = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "by": {"oneOf": [_BY_TEXT, dict(_array(_BY_TEXT), minItems=1)]},
        "since": {
            "oneOf": [_DURATION_TEXT, {"type": "number", "exclusiveMinimum": True, "minimum": 0, "maximum": LONGEST}]
        },
        "min_flows": {"type": "integer", "minimum": 1, "maximum": 1000000000},
        "exclude": _array(_SELECTOR_TEXT),
        "merge_gap": {"type": "integer", "minimum": 0, "maximum": 65535},
        "max_ports": {"type": "integer", "minimum": 0, "maximum": 65535},
    },
}
_NO_BODY = {
    "required": False,
    "content": {"application/json": {"schema": {"type": "object", "additionalProperties": False, "maxProperties": 0}}},
}

_TOP_PAIRS = _array(
    _obj(
        src={"type": "string"},
        dst={"type": "string"},
        proto={"type": "string"},
        port={"type": "integer"},
        flows={"type": "integer"},
    )
)
_TALLY = {"flows": {"type": "integer"}, "pairs": {"type": "integer"}, "top": _TOP_PAIRS}
_REPLAY_CATEGORY = _obj(**_TALLY, by_rule=_array(_obj(rule={"type": "string"}, **_TALLY)))
_REPLAY = {  # a what-if replay (segctl.core.replay.ReplayReport.to_json)
    "replayed": _obj(flows={"type": "integer"}, pairs={"type": "integer"}),
    "not_replayed": _obj(flows={"type": "integer"}, edges={"type": "integer"}),
    "decisions": {"type": "integer"},
    "newly_denied": _REPLAY_CATEGORY,
    "newly_allowed": _REPLAY_CATEGORY,
    "unchanged": _REPLAY_CATEGORY,
    "would_deny_once_enforced": _REPLAY_CATEGORY,
    "breaks": {"type": "boolean"},
    "since": {"type": "number"},
    "mode": {"type": "string"},
}
# A draft policy, sent as YAML text; its shape (README "Policy file"), checked by segctl's loader.
_DRAFT = {
    "schema": {
        "type": "object",
        "nullable": True,  # an empty draft: no rule, as an empty policy file
        "additionalProperties": False,
        # What each key holds is the loader's to check: its problems come back as `draft:LINE`.
        "properties": {key: {} for key in ("mode", "modes", "groups", "rules", "protection")},
    },
    "example": {"groups": {"web": {"role": "web"}}, "rules": [{"name": "r", "from": "web", "to": "any"}]},
}

OPENAPI = {
    "openapi": "3.0.3",
    "info": {
        "title": "segctl",
        "version": __version__,
        "description": "Zero-trust microsegmentation controller: hosts, connections, quarantine, reload.",
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": _obj(error={"type": "string"}),
            "Host": {
                "type": "object",
                "required": ["name", "mac", "ip", "labels", "location", "state"],
                "properties": {
                    "name": {"type": "string", "nullable": True, "description": "null: a device not in the directory"},
                    "mac": {"type": "string"},
                    "ip": {"type": "string", "nullable": True},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "location": dict(_LOCATION, nullable=True),
                    "state": {"type": "string", "enum": ["authenticated", "unknown", "quarantined"]},
                    "pin": dict(_LOCATION, nullable=True, description="directory hosts only"),
                    "last_seen": {"type": "number", "description": "devices not in the directory only"},
                },
            },
            "Quarantine": _obj(
                host={"type": "string"},
                mac={"type": "string"},
                reason={"type": "string"},
                since={"type": "number"},
                by={"type": "string"},
            ),
            "Switches": _obj(confirmed=_INTEGERS, unconfirmed=_INTEGERS),
            "Flow": {
                "type": "object",
                "required": ["id", "src", "dst", "src_ip", "dst_ip", "proto", "src_port", "dst_port", "rule"]
                + ["switches", "since"],
                "properties": {
                    "id": {"type": "integer"},
                    "src": {"type": "string"},
                    "dst": {"type": "string"},
                    "src_ip": {"type": "string"},
                    "dst_ip": {"type": "string"},
                    "proto": {"type": "string"},
                    "src_port": {
                        "type": "integer",
                        "nullable": True,
                        "description": "ICMP: the type; null on the stateful pipeline (every client port)",
                    },
                    "dst_port": {
                        "type": "integer",
                        "nullable": True,
                        "description": "ICMP: the code (null on the stateful pipeline: any code)",
                    },
                    "rule": {"type": "string", "nullable": True},
                    "switches": _INTEGERS,
                    "since": {"type": "number"},
                    "monitor_only": {"type": "boolean"},
                    "pipeline": {
                        "type": "string",
                        "enum": ["reactive", "stateful"],
                        "description": "stateful: an allowed service; its connections are the switches' trackers'",
                    },
                    "cookie": {"type": "string"},
                },
            },
        },
    },
    "security": [{"bearer": []}],
    "paths": {
        "/v1/health": {
            "get": {
                "summary": "liveness and counters",
                "security": [],
                "responses": _answers(
                    **{
                        "200": _ok(
                            _obj(
                                status={"type": "string", "enum": ["ok"]},
                                uptime={"type": "number"},
                                mode={"type": "string"},
                                pipeline={"type": "string", "enum": ["reactive", "stateful", "auto"]},
                                switches=_INTEGERS,
                                conntrack_switches=_INTEGERS,
                                links={"type": "integer"},
                                hosts={"type": "integer"},
                                hosts_bound={"type": "integer"},
                                connections={"type": "integer"},
                                quarantined={"type": "integer"},
                                packet_ins={"type": "integer"},
                                drift_findings={"type": "integer"},
                                directory=_obj(status={"type": "string"}, source={"type": "string"}),
                                flow_store=_FLOW_STORE,
                            )
                        )
                    }
                ),
            }
        },
        "/v1/openapi.json": {
            "get": {"summary": "this document", "responses": _answers("401", **{"200": _ok({"type": "object"})})}
        },
        "/v1/hosts": {
            "get": {
                "summary": "every known host",
                "responses": _answers("401", **{"200": _ok(_obj(hosts=_array(_ref("Host"))))}),
            }
        },
        "/v1/hosts/{host}": {
            "get": {
                "summary": "one host",
                "parameters": [_HOST_PARAM],
                "responses": _answers("401", "404", **{"200": _ok(_ref("Host"))}),
            }
        },
        "/v1/hosts/{host}/reach": {
            "get": {
                "summary": "blast radius: the hosts HOST may open connections to, hop by hop, or who may reach it",
                "parameters": [
                    _HOST_PARAM,
                    {"name": "hops", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_HOPS}},
                    {"name": "direction", "in": "query", "schema": {"type": "string", "enum": ["from", "to"]}},
                    {
                        "name": "since",
                        "in": "query",
                        "schema": {"type": "string"},
                        "description": "recorded flows of this window only: a duration like 90s, 30m, 24h, 7d",
                        "example": "24h",
                    },
                ],
                "responses": _answers(
                    "401",
                    "404",
                    **{
                        "200": _ok(
                            _obj(
                                host={"type": "string"},
                                labels={"type": "object", "additionalProperties": {"type": "string"}},
                                direction={"type": "string", "enum": ["from", "to"]},
                                hops={"type": "integer"},
                                quarantined={"type": "boolean"},
                                flows_recorded={"type": "boolean"},
                                per_hop=_INTEGERS,
                                reached=_array(_REACHED),
                            )
                        )
                    },
                ),
            }
        },
        "/v1/quarantine": {
            "get": {
                "summary": "quarantined hosts",
                "responses": _answers("401", **{"200": _ok(_obj(quarantine=_array(_ref("Quarantine"))))}),
            },
            "post": {
                "summary": "cut a host off on every switch; answers after the switches confirmed",
                "description": "400 also for an address no host owns: multicast, all-zero, the controller's own.",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["host", "reason"],
                                "additionalProperties": False,
                                "properties": {
                                    "host": {"type": "string", "minLength": 1, "maxLength": 1000},
                                    "reason": {"type": "string", "minLength": 1, "maxLength": 1000},
                                },
                            },
                            "example": {"host": "web1", "reason": "EDR: C2 beaconing"},
                        }
                    },
                },
                "responses": _answers(
                    "401",
                    "404",
                    "413",
                    **{
                        "200": _ok(
                            {
                                "allOf": [
                                    _ref("Quarantine"),
                                    _obj(switches=_ref("Switches"), seconds={"type": "number"}),
                                ]
                            }
                        )
                    },
                ),
            },
        },
        "/v1/quarantine/{host}": {
            "delete": {
                "summary": "release",
                "parameters": [_HOST_PARAM],
                "responses": _answers(
                    "401", "404", **{"200": _ok(_obj(released={"type": "string"}, switches=_ref("Switches")))}
                ),
            }
        },
        "/v1/flows": {
            "get": {
                "summary": "connections allowed now",
                "responses": _answers("401", **{"200": _ok(_obj(flows=_array(_ref("Flow"))))}),
            }
        },
        "/v1/audit": {
            "get": {
                "summary": "each switch's last flow-table audit: entries read, findings, a few of them shown",
                "responses": _answers(
                    "401",
                    **{
                        "200": _ok(
                            _obj(
                                interval={"type": "number"},
                                drift_findings={"type": "integer"},
                                switches=_array(
                                    _obj(
                                        **_AUDIT,
                                        last_drift={"oneOf": [{"type": "null"}, _obj(**_AUDIT)]},
                                    )
                                ),
                            )
                        )
                    },
                ),
            }
        },
        "/v1/events": {
            "get": {
                "summary": "latest decisions and actions, oldest first",
                "parameters": [
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 10000}},
                    {"name": "kind", "in": "query", "schema": {"type": "string"}, "example": "deny"},
                ],
                "responses": _answers(
                    "401",
                    **{"200": _ok(_obj(events=_array(_obj(time={"type": "number"}, kind={"type": "string"}))))},
                ),
            }
        },
        "/v1/map": {
            "get": {
                "summary": "recorded flows between groups of hosts, with what the current policy does with them",
                "description": "409 when the controller records no flows (--retention 0) or its flow store "
                "cannot be read (`error` says why).",
                "parameters": [
                    {"name": "by", "in": "query", "schema": _BY_TEXT},
                    {"name": "since", "in": "query", "schema": _DURATION_TEXT},
                    {
                        "name": "verdict",
                        "in": "query",
                        "schema": {"type": "string", "enum": ["allowed", "monitored", "denied"]},
                    },
                ],
                "responses": _answers(
                    "401",
                    "409",
                    **{
                        "200": _ok(
                            _obj(by=_array({"type": "string"}), nodes=_array(_MAP_NODE), edges=_array(_MAP_EDGE))
                        )
                    },
                ),
            }
        },
        "/v1/policy/suggest": {
            "post": {
                "summary": "a draft policy (YAML text) that allows the recorded flows between directory hosts",
                "description": "409 when the controller records no flows (--retention 0) or its flow store "
                "cannot be read (`error` says why).",
                "requestBody": {
                    "required": False,
                    "content": {
                        "application/json": {"schema": _SUGGEST_BODY, "example": {"by": "role", "since": "7d"}}
                    },
                },
                "responses": _answers(
                    "401",
                    "409",
                    "413",
                    **{
                        "200": _ok(
                            _obj(
                                draft={"type": "string"},
                                coverage=_obj(
                                    observed=_COUNT,
                                    allowed=_COUNT,
                                    forwarded=_COUNT,
                                    forwarded_allowed=_COUNT,
                                    percent={"type": "number"},
                                ),
                                groups=_COUNT,
                                rules=_COUNT,
                                left_out={"type": "object", "additionalProperties": _COUNT},
                            )
                        )
                    },
                ),
            }
        },
        "/v1/policy/simulate": {
            "post": {
                "summary": "what-if: every recorded flow decided by the running policy and by a draft",
                "description": "Body: the draft policy's YAML text (at most 1 MiB); nothing is applied. 400 with "
                "`errors` (`draft:LINE: message`) for a draft with problems; 409 when no flow store records flows.",
                "parameters": [
                    {"name": "since", "in": "query", "schema": {"type": "string"}, "example": "24h"},
                    {"name": "top", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
                ],
                "requestBody": {
                    "required": True,
                    "content": {kind: _DRAFT for kind in ("application/yaml", "text/yaml", "text/plain")},
                },
                "responses": _answers("401", "409", "413", "415", **{"200": _ok(_obj(**_REPLAY))}),
            }
        },
        "/v1/policy/reload": {
            "post": {
                "summary": "re-read directory and policy; revoke what is no longer allowed",
                "description": "`dry_run=true`: apply nothing; answer the replay of the files' policy against the "
                "last day's recorded flows and how many connections a reload would revoke (409 without a flow store).",
                "parameters": [{"name": "dry_run", "in": "query", "schema": {"type": "boolean"}}],
                "requestBody": _NO_BODY,
                "responses": {
                    "200": _ok(
                        {
                            "type": "object",
                            "required": ["ok", "revoked", "hosts", "rules", "mode"],
                            "properties": {
                                "ok": {"type": "boolean", "enum": [True]},
                                "revoked": {"type": "integer"},
                                "hosts": {"type": "integer"},
                                "rules": {"type": "integer"},
                                "mode": {"type": "string"},
                                "switches": _ref("Switches"),
                                "dry_run": {"type": "boolean"},
                                **_REPLAY,
                            },
                        }
                    ),
                    "400": _ok(
                        {
                            "type": "object",
                            "required": ["error"],
                            "properties": {
                                "error": {"type": "string"},
                                "ok": {"type": "boolean", "enum": [False]},
                                "errors": _array({"type": "string"}),
                            },
                        },
                        "refused, the running files kept (`errors`: FILE:LINE: message each), or a bad request",
                    ),
                    "401": _ERROR,
                    "409": _ERROR,
                    "413": _ERROR,
                },
            }
        },
    },
}
