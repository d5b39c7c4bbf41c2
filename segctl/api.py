"""The REST API: thin JSON adapters over the runtime, with bearer-token authentication.

Every error is JSON `{"error": "..."}` with a 4xx status; unexpected failures are logged and
answered 500, and the fuzz tests hold that no input reaches that branch.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
from collections.abc import Callable

from webob import Request, Response

from .core.controller import UnknownHost
from .openapi import OPENAPI

LOG = logging.getLogger("segctl.api")
MAX_BODY = 64 * 1024
MAX_TEXT = 1000
MIN_TOKEN = 16


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def load_tokens(path: str) -> dict[str, str]:
    """Tokens from a file: one per line, `TOKEN` or `NAME:TOKEN`; '#' starts a comment.
    Returns {token: name}. Raises ValueError naming the file and line of a bad entry."""
    tokens: dict[str, str] = {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            name, _, token = line.rpartition(":")
            name = name or "api"
            if len(token) < MIN_TOKEN or any(c.isspace() for c in token):
                raise ValueError(f"{path}:{number}: a token needs at least {MIN_TOKEN} characters and no spaces")
            tokens[token] = name
    if not tokens:
        raise ValueError(f"{path}:1: no token in the file")
    return tokens


def _text(body: dict, key: str, required: bool = True) -> str | None:
    value = body.get(key)
    if value is None:
        if required:
            raise ApiError(400, f"'{key}' is required")
        return None
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, f"'{key}' must be a non-empty string")
    if len(value) > MAX_TEXT:
        raise ApiError(400, f"'{key}' is longer than {MAX_TEXT} characters")
    return value.strip()


class Api:
    """A WSGI application over a Runtime."""

    def __init__(self, runtime, tokens: dict[str, str]):
        self.runtime = runtime
        self.tokens = tokens
        self.routes: list[tuple[str, re.Pattern, Callable, bool]] = []
        for method, pattern, handler, public in (
            ("GET", r"/v1/health", self.health, True),
            ("GET", r"/v1/openapi\.json", self.openapi, False),
            ("GET", r"/v1/hosts", self.hosts, False),
            ("GET", r"/v1/hosts/(?P<host>[^/]+)", self.host, False),
            ("GET", r"/v1/quarantine", self.quarantined, False),
            ("POST", r"/v1/quarantine", self.quarantine, False),
            ("DELETE", r"/v1/quarantine/(?P<host>[^/]+)", self.release, False),
            ("GET", r"/v1/flows", self.flows, False),
            ("GET", r"/v1/events", self.events, False),
            ("POST", r"/v1/policy/reload", self.reload, False),
        ):
            self.routes.append((method, re.compile(pattern + r"\Z"), handler, public))

    def __call__(self, environ, start_response):
        request = Request(environ)
        try:
            status, body = self.dispatch(request)
        except ApiError as exc:
            status, body = exc.status, {"error": exc.message}
        except Exception:  # noqa: BLE001 - a bug; keep serving, say so, log it
            LOG.exception("API request %s %s failed", request.method, request.path_info)
            status, body = 500, {"error": "internal error; see the controller log"}
        response = Response(status=status, content_type="application/json", charset="utf-8")
        response.text = json.dumps(body, sort_keys=True) + "\n"
        if status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="segctl"'
        return response(environ, start_response)

    def dispatch(self, request: Request) -> tuple[int, object]:
        path = request.path_info
        allowed = []
        for method, pattern, handler, public in self.routes:
            match = pattern.match(path)
            if match is None:
                continue
            if method != request.method:
                allowed.append(method)
                continue
            who = None if public else self.authenticate(request)
            return handler(request, who, **match.groupdict())
        if allowed:
            raise ApiError(405, f"{request.method} is not allowed on {path} (allowed: {', '.join(allowed)})")
        raise ApiError(404, f"no such endpoint: {path}")

    def authenticate(self, request: Request) -> str:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise ApiError(401, "missing bearer token")
        found = None
        for known, name in self.tokens.items():
            # Compare against every token, in constant time each, so timing reveals nothing.
            if hmac.compare_digest(known.encode(), token.strip().encode()):
                found = name
        if found is None:
            raise ApiError(401, "wrong bearer token")
        return found

    @staticmethod
    def json_body(request: Request, allowed: set[str]) -> dict:
        if request.content_length is not None and request.content_length > MAX_BODY:
            raise ApiError(413, f"body larger than {MAX_BODY} bytes")
        raw = request.body_file.read(MAX_BODY + 1)
        if len(raw) > MAX_BODY:
            raise ApiError(413, f"body larger than {MAX_BODY} bytes")
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise ApiError(400, "body is not valid JSON") from None
        if not isinstance(body, dict):
            raise ApiError(400, "body must be a JSON object")
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise ApiError(400, f"unknown field(s): {', '.join(map(str, unknown))}")
        return body

    # -- endpoints ---------------------------------------------------------------------------
    def health(self, request, who):
        return 200, self.runtime.health()

    def openapi(self, request, who):
        return 200, OPENAPI

    def hosts(self, request, who):
        return 200, {"hosts": self.runtime.controller.hosts_view()}

    def host(self, request, who, host):
        view = self.runtime.controller.find_host_view(host)
        if view is None:
            raise ApiError(404, f"no host {host!r}")
        return 200, view

    def quarantined(self, request, who):
        return 200, {"quarantine": self.runtime.controller.quarantine_view()}

    def quarantine(self, request, who):
        body = self.json_body(request, {"host", "reason"})
        host, reason = _text(body, "host"), _text(body, "reason")
        try:
            return 200, self.runtime.quarantine(host, reason, by=who)
        except UnknownHost as exc:
            raise ApiError(404, str(exc)) from None

    def release(self, request, who, host):
        try:
            return 200, self.runtime.release(host, by=who)
        except UnknownHost as exc:
            raise ApiError(404, str(exc)) from None

    def flows(self, request, who):
        return 200, {"flows": self.runtime.controller.flows_view()}

    def events(self, request, who):
        raw = request.GET.get("limit", "100")
        if not raw.isdigit() or not 1 <= int(raw) <= 10000:
            raise ApiError(400, "limit must be a number from 1 to 10000")
        kind = request.GET.get("kind")
        return 200, {"events": self.runtime.events.latest(int(raw), kind)}

    def reload(self, request, who):
        if request.content_length or request.headers.get("Transfer-Encoding"):
            self.json_body(request, set())  # an empty object is all it takes
        report = self.runtime.reload(by=who)
        return (200 if report["ok"] else 400), (
            report if report["ok"] else dict(report, error=f"reload refused: {len(report['errors'])} problem(s)")
        )
