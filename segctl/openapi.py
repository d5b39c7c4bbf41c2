"""The OpenAPI 3 description of the REST API, served at GET /v1/openapi.json.

The response schemas list the fields every answer carries as required (an answer may carry
more), so that tests/unit/test_schema_fuzz.py catches an answer that drifts from this document."""

from __future__ import annotations

from . import __version__

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
_NO_BODY = {
    "required": False,
    "content": {"application/json": {"schema": {"type": "object", "additionalProperties": False, "maxProperties": 0}}},
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
                    "src_port": {"type": "integer", "nullable": True, "description": "ICMP: the type"},
                    "dst_port": {"type": "integer", "nullable": True, "description": "ICMP: the code"},
                    "rule": {"type": "string", "nullable": True},
                    "switches": _INTEGERS,
                    "since": {"type": "number"},
                    "monitor_only": {"type": "boolean"},
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
                                switches=_INTEGERS,
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
        "/v1/policy/reload": {
            "post": {
                "summary": "re-read directory and policy; revoke what is no longer allowed",
                "requestBody": _NO_BODY,
                "responses": {
                    "200": _ok(
                        _obj(
                            ok={"type": "boolean", "enum": [True]},
                            revoked={"type": "integer"},
                            hosts={"type": "integer"},
                            rules={"type": "integer"},
                            mode={"type": "string"},
                            switches=_ref("Switches"),
                        )
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
                    "413": _ERROR,
                },
            }
        },
    },
}
