"""The OpenAPI 3 description of the REST API, served at GET /v1/openapi.json."""

from __future__ import annotations

from . import __version__

_ERROR = {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _ok(schema: dict, description: str = "ok") -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _obj(**properties) -> dict:
    return {"type": "object", "properties": properties}


_HOST_PARAM = {
    "name": "host",
    "in": "path",
    "required": True,
    "description": "directory name or MAC address",
    "schema": {"type": "string", "minLength": 1},
}
_AUTH_ERRORS = {"401": _ERROR}

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
            "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
            "Host": _obj(
                name={"type": "string", "nullable": True},
                mac={"type": "string"},
                ip={"type": "string", "nullable": True},
                labels={"type": "object", "additionalProperties": {"type": "string"}},
                location={
                    "type": "object",
                    "nullable": True,
                    "properties": {"dpid": {"type": "integer"}, "port": {"type": "integer"}},
                },
                state={"type": "string", "enum": ["authenticated", "unknown", "quarantined"]},
            ),
            "Quarantine": _obj(
                host={"type": "string"},
                mac={"type": "string"},
                reason={"type": "string"},
                since={"type": "number"},
                by={"type": "string"},
            ),
            "Flow": _obj(
                id={"type": "integer"},
                src={"type": "string"},
                dst={"type": "string"},
                src_ip={"type": "string"},
                dst_ip={"type": "string"},
                proto={"type": "string"},
                src_port={"type": "integer", "nullable": True},
                dst_port={"type": "integer", "nullable": True},
                rule={"type": "string", "nullable": True},
                switches={"type": "array", "items": {"type": "integer"}},
                since={"type": "number"},
            ),
        },
    },
    "security": [{"bearer": []}],
    "paths": {
        "/v1/health": {
            "get": {
                "summary": "liveness and counters",
                "security": [],
                "responses": {"200": _ok(_obj(status={"type": "string", "enum": ["ok"]}))},
            }
        },
        "/v1/openapi.json": {
            "get": {"summary": "this document", "responses": {"200": _ok({"type": "object"}), **_AUTH_ERRORS}}
        },
        "/v1/hosts": {
            "get": {
                "summary": "every known host",
                "responses": {
                    "200": _ok(_obj(hosts={"type": "array", "items": {"$ref": "#/components/schemas/Host"}})),
                    **_AUTH_ERRORS,
                },
            }
        },
        "/v1/hosts/{host}": {
            "get": {
                "summary": "one host",
                "parameters": [_HOST_PARAM],
                "responses": {"200": _ok({"$ref": "#/components/schemas/Host"}), "404": _ERROR, **_AUTH_ERRORS},
            }
        },
        "/v1/quarantine": {
            "get": {
                "summary": "quarantined hosts",
                "responses": {
                    "200": _ok(
                        _obj(quarantine={"type": "array", "items": {"$ref": "#/components/schemas/Quarantine"}})
                    ),
                    **_AUTH_ERRORS,
                },
            },
            "post": {
                "summary": "cut a host off on every switch; answers after the switches confirmed",
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
                            }
                        }
                    },
                },
                "responses": {
                    "200": _ok({"$ref": "#/components/schemas/Quarantine"}),
                    "400": _ERROR,
                    "404": _ERROR,
                    "413": _ERROR,
                    **_AUTH_ERRORS,
                },
            },
        },
        "/v1/quarantine/{host}": {
            "delete": {
                "summary": "release",
                "parameters": [_HOST_PARAM],
                "responses": {"200": _ok({"type": "object"}), "404": _ERROR, **_AUTH_ERRORS},
            }
        },
        "/v1/flows": {
            "get": {
                "summary": "connections allowed now",
                "responses": {
                    "200": _ok(_obj(flows={"type": "array", "items": {"$ref": "#/components/schemas/Flow"}})),
                    **_AUTH_ERRORS,
                },
            }
        },
        "/v1/events": {
            "get": {
                "summary": "latest decisions and actions",
                "parameters": [
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 10000}},
                    {"name": "kind", "in": "query", "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": _ok(_obj(events={"type": "array", "items": {"type": "object"}})),
                    "400": _ERROR,
                    **_AUTH_ERRORS,
                },
            }
        },
        "/v1/policy/reload": {
            "post": {
                "summary": "re-read directory and policy; revoke what is no longer allowed",
                "responses": {
                    "200": _ok(_obj(ok={"type": "boolean"}, revoked={"type": "integer"})),
                    "400": _ok(
                        _obj(
                            ok={"type": "boolean"},
                            errors={"type": "array", "items": {"type": "string"}},
                            error={"type": "string"},
                        ),
                        "refused: the running files are kept",
                    ),
                    **_AUTH_ERRORS,
                },
            }
        },
    },
}
