"""The REST API: thin JSON adapters over the runtime, with bearer-token authentication.

Every error is JSON `{"error": "..."}` with a 4xx status; an unexpected failure is logged with
its traceback and answered with a bare JSON 500 (no internals leave the process), and the fuzz
tests hold that no input reaches that branch.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
from collections.abc import Callable
from urllib.parse import parse_qsl

from webob import Request, Response

from .core.controller import UnknownHost
from .core.durations import LONGEST, parse_duration
from .core.errors import ConfigError
from .core.flowlog import VERDICTS
from .core.flowmap import DEFAULT_BY, parse_by
from .core.macs import NotAHostMac
from .core.reach import MAX_HOPS
from .core.replay import DEFAULT_TOP
from .core.suggest import MAX_PORTS, SuggestOptions, parse_selector
from .openapi import OPENAPI, SINCE_PATTERN
from .runtime import NoFlowStore

LOG = logging.getLogger("segctl.api")
MAX_BODY = 64 * 1024
MAX_TEXT = 1000
MIN_TOKEN = 16
# The query parameters each endpoint reads, by handler name; any other is refused, so that a typo
# (`?limt=5`) or a parameter this version does not know (a later `?dry_run=true`) is never ignored.
QUERY_PARAMETERS = {
    "events": {"limit", "kind"},
    "reach": {"hops", "direction", "since"},
    "flow_map": {"by", "since", "verdict"},
    "simulate": {"since", "top"},
    "reload": {"dry_run"},
}
MAX_DRAFT = 1024 * 1024  # bytes of a draft policy's YAML (POST /v1/policy/simulate)
DRAFT_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/plain")
REPLAY_SINCE = 86400.0  # what-if replays look at the last day of recorded flows unless told
INTERNAL_ERROR = "internal error; see the controller log"
NOT_UTF8 = "the URL is not valid UTF-8 (after %-decoding)"


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


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
    if not _is_unicode_text(value):
        raise ApiError(400, f"'{key}' holds a lone surrogate (\\ud800-\\udfff): it must be Unicode text")
    if len(value) > MAX_TEXT:
        raise ApiError(400, f"'{key}' is longer than {MAX_TEXT} characters")
    return value.strip()


def _is_unicode_text(value: str) -> bool:
    """False for a string with a lone surrogate: JSON's \\ud800 escape gives one, and it can be
    neither logged nor saved as UTF-8 (a saved quarantine reason would break every later save)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _query(request: Request) -> list[tuple[str, str]]:
    """The query string's (name, value) pairs. Not webob's request.GET: that also splits on ';',
    which clients leave unencoded inside values, and raises on bytes that are not UTF-8."""
    # PEP 3333 hands over each byte as one latin-1 character; %XX decoded the same way gives
    # the bytes back, which must then be UTF-8.
    pairs = parse_qsl(request.environ.get("QUERY_STRING", ""), keep_blank_values=True, encoding="latin-1")
    try:
        return [(name.encode("latin-1").decode(), value.encode("latin-1").decode()) for name, value in pairs]
    except UnicodeError:
        raise ApiError(400, NOT_UTF8) from None


def _check_query(request: Request, known: set[str]) -> None:
    """Refuse query parameters the endpoint does not read, and any given twice (which one
    counts would be a guess)."""
    names = [name for name, _ in _query(request)]
    unknown = sorted(set(names) - known)
    if unknown:
        raise ApiError(400, f"unknown query parameter(s): {', '.join(unknown)}")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ApiError(400, f"query parameter(s) given more than once: {', '.join(repeated)}")


def _read_body(request: Request, limit: int, what: str) -> bytes:
    """The body, refused (413) past `limit` bytes whatever Content-Length claimed."""
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, f"{what} larger than {limit} bytes")
    raw = request.body_file.read(limit + 1)
    if len(raw) > limit:
        raise ApiError(413, f"{what} larger than {limit} bytes")
    return raw


def _json_response(status: int, body: object, headers: dict[str, str] | None = None) -> Response:
    response = Response(status=status, content_type="application/json", charset="utf-8")
    response.text = json.dumps(body, sort_keys=True) + "\n"
    response.headers.update(headers or {})
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="segctl"'
    return response


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
            ("GET", r"/v1/hosts/(?P<host>[^/]+)/reach", self.reach, False),
            ("GET", r"/v1/quarantine", self.quarantined, False),
            ("POST", r"/v1/quarantine", self.quarantine, False),
            ("DELETE", r"/v1/quarantine/(?P<host>[^/]+)", self.release, False),
            ("GET", r"/v1/flows", self.flows, False),
            ("GET", r"/v1/audit", self.audit, False),
            ("GET", r"/v1/events", self.events, False),
            ("POST", r"/v1/policy/reload", self.reload, False),
            ("GET", r"/v1/map", self.flow_map, False),
            ("POST", r"/v1/policy/suggest", self.suggest, False),
            ("POST", r"/v1/policy/simulate", self.simulate, False),
        ):
            self.routes.append((method, re.compile(pattern + r"\Z"), handler, public))

    def __call__(self, environ, start_response):
        try:
            response = self.respond(Request(environ))
        except Exception:  # noqa: BLE001 - a bug: keep serving, log it, tell the client nothing more
            # The raw environ strings only: decoding the request may be what failed.
            LOG.exception("API request %r %r failed", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"))
            response = _json_response(500, {"error": INTERNAL_ERROR})
        return response(environ, start_response)

    def respond(self, request: Request) -> Response:
        try:
            status, body = self.dispatch(request)
        except ApiError as exc:
            return _json_response(exc.status, {"error": exc.message}, exc.headers)
        return _json_response(status, body)

    def dispatch(self, request: Request) -> tuple[int, object]:
        path = self.decoded_path(request)
        allowed = []
        for method, pattern, handler, public in self.routes:
            match = pattern.match(path)
            if match is None:
                continue
            if method != request.method:
                allowed.append(method)
                continue
            who = None if public else self.authenticate(request)
            _check_query(request, QUERY_PARAMETERS.get(handler.__name__, set()))
            return handler(request, who, **match.groupdict())
        if allowed:
            message = f"{request.method} is not allowed on {path} (allowed: {', '.join(allowed)})"
            raise ApiError(405, message, {"Allow": ", ".join(allowed)})
        raise ApiError(404, f"no such endpoint: {path}")

    @staticmethod
    def decoded_path(request: Request) -> str:
        """The request's path; webob decodes it as UTF-8 and raises on other bytes (`/%ff`)."""
        try:
            return request.path_info
        except UnicodeDecodeError:
            raise ApiError(400, NOT_UTF8) from None

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
        raw = _read_body(request, MAX_BODY, "body")
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise ApiError(400, "body is not valid JSON") from None
        except RecursionError:  # json's parser recurses once per level: `[[[[...` fits in 64 KiB
            raise ApiError(400, "body is nested too deeply") from None
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
        return 200, {"hosts": self.runtime.hosts_view()}

    def host(self, request, who, host):
        view = self.runtime.host_view(host)
        if view is None:
            raise ApiError(404, f"no host {host!r}")
        return 200, view

    def reach(self, request, who, host):
        query = dict(_query(request))
        hops, direction = query.get("hops", "1"), query.get("direction", "from")
        if not re.fullmatch(r"[0-9]{1,2}", hops) or not 1 <= int(hops) <= MAX_HOPS:
            raise ApiError(400, f"hops must be a number from 1 to {MAX_HOPS}")
        if direction not in ("from", "to"):
            raise ApiError(400, "direction must be 'from' (what HOST may reach) or 'to' (who may reach HOST)")
        since = _duration("since", query["since"]) if "since" in query else None
        view = self.runtime.reach_view(host, int(hops), direction == "to", since)
        if view is None:
            raise ApiError(404, f"no host {host!r} in the directory")
        return 200, view

    def quarantined(self, request, who):
        return 200, {"quarantine": self.runtime.quarantine_view()}

    def quarantine(self, request, who):
        body = self.json_body(request, {"host", "reason"})
        host, reason = _text(body, "host"), _text(body, "reason")
        try:
            return 200, self.runtime.quarantine(host, reason, by=who)
        except UnknownHost as exc:
            raise ApiError(404, str(exc)) from None
        except NotAHostMac as exc:
            raise ApiError(400, str(exc)) from None

    def release(self, request, who, host):
        try:
            return 200, self.runtime.release(host, by=who)
        except (UnknownHost, NotAHostMac) as exc:  # an address no host owns is never quarantined
            raise ApiError(404, str(exc)) from None

    def flows(self, request, who):
        return 200, {"flows": self.runtime.connections_view()}

    def audit(self, request, who):
        return 200, self.runtime.audit_view()

    def events(self, request, who):
        query = dict(_query(request))
        raw = query.get("limit", "100")
        # ASCII digits only: str.isdigit() also takes '²', which int() refuses, and int() refuses
        # strings of more than 4300 digits.
        if not re.fullmatch(r"[0-9]{1,5}", raw) or not 1 <= int(raw) <= 10000:
            raise ApiError(400, "limit must be a number from 1 to 10000")
        kind = query.get("kind")
        return 200, {"events": self.runtime.events.latest(int(raw), kind)}

    def reload(self, request, who):
        if request.content_length or request.headers.get("Transfer-Encoding"):
            self.json_body(request, set())  # an empty object is all it takes
        dry_run = dict(_query(request)).get("dry_run", "false")
        if dry_run not in ("true", "false"):
            raise ApiError(400, f"dry_run must be true or false, not {dry_run[:40]!r}")
        if dry_run == "true":
            report = _from_recorded(lambda: self.runtime.reload_dry_run(REPLAY_SINCE, DEFAULT_TOP))
            return (200, report) if report["ok"] else (400, dict(report, error="reload would be refused"))
        report = self.runtime.reload(by=who)
        return (200 if report["ok"] else 400), (
            report if report["ok"] else dict(report, error=f"reload refused: {len(report['errors'])} problem(s)")
        )

    def flow_map(self, request, who):
        query = dict(_query(request))
        verdict = query.get("verdict")
        if verdict is not None and verdict not in VERDICTS:
            raise ApiError(400, f"verdict must be one of {', '.join(VERDICTS)}, not {verdict!r}")
        by = _parsed("by", query["by"], parse_by) if "by" in query else DEFAULT_BY
        return 200, _from_recorded(lambda: self.runtime.flow_map(by, _since(query.get("since")), verdict))

    def suggest(self, request, who):
        fields = {"by", "since", "min_flows", "exclude", "merge_gap", "max_ports"}
        has_body = request.content_length or request.headers.get("Transfer-Encoding")
        body = self.json_body(request, fields) if has_body else {}
        for name in sorted(name for name, value in body.items() if value is None):
            raise ApiError(400, f"'{name}' is null: leave it out for its default")
        by = body.get("by", ",".join(DEFAULT_BY))  # `role,app` or ["role", "app"]
        keys = [key for item in (by if isinstance(by, list) and by else [by]) for key in _parsed("by", item, parse_by)]
        exclude = body.get("exclude", [])
        if not isinstance(exclude, list) or not all(isinstance(item, str) for item in exclude):
            raise ApiError(400, "'exclude' must be a list of selectors like \"role=scanner\"")
        since = body.get("since")
        options = SuggestOptions(
            by=tuple(dict.fromkeys(keys)),
            min_flows=_whole(body, "min_flows", 1, 1, 10**9),
            exclude=tuple(_parsed("exclude", item, parse_selector) for item in exclude),
            merge_gap=_whole(body, "merge_gap", 0, 0, 65535),
            max_ports=_whole(body, "max_ports", MAX_PORTS, 0, 65535),
            since=None if since is None else str(since),
        )
        return 200, _from_recorded(lambda: self.runtime.suggest_policy(options, _since(since)))

    def simulate(self, request, who):
        query = dict(_query(request))
        since = _replay_since(query.get("since"))
        top = query.get("top", str(DEFAULT_TOP))
        if not re.fullmatch(r"[0-9]{1,3}", top) or not 1 <= int(top) <= 100:
            raise ApiError(400, "top must be a number from 1 to 100")
        text = self.draft_body(request)
        try:
            return 200, _from_recorded(lambda: self.runtime.simulate(text, since, int(top)))
        except ConfigError as exc:
            errors = [str(problem) for problem in exc.problems]
            return 400, {"error": f"draft refused: {len(errors)} problem(s), first: {errors[0]}", "errors": errors}

    @staticmethod
    def draft_body(request: Request) -> str:
        """The draft policy's YAML text: at most MAX_DRAFT bytes of UTF-8, sent as YAML or text."""
        if request.content_type not in DRAFT_TYPES:
            raise ApiError(415, f"send the draft policy as YAML text (Content-Type {' or '.join(DRAFT_TYPES)})")
        raw = _read_body(request, MAX_DRAFT, "draft")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ApiError(400, f"draft is not UTF-8 text (byte {exc.start})") from None
        return text  # empty: a policy with no rule, as an empty policy file is


def _parsed(name: str, value, parse):
    """`parse(value)` for a parameter given as text; a 400 naming it otherwise."""
    if not isinstance(value, str) or not _is_unicode_text(value) or len(value) > MAX_TEXT:
        raise ApiError(400, f"'{name}' must be text of at most {MAX_TEXT} characters")
    try:
        return parse(value)
    except ValueError as exc:
        raise ApiError(400, f"'{name}': {exc}") from None


def _since(value) -> float | None:
    """The window `since`: seconds (a JSON number) or a duration like 90s, 24h, 7d; None: all."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not 0 < value <= LONGEST:
            raise ApiError(400, f"'since' must be more than 0 and at most {LONGEST} seconds")
        return float(value)
    if value is not None and (not isinstance(value, str) or not re.match(SINCE_PATTERN, value)):
        raise ApiError(400, "'since' must be a number of seconds or a duration like 90s, 30m, 24h, 7d or 2w")
    return None if value is None else _parsed("since", value, parse_duration)


def _whole(body: dict, name: str, default: int, low: int, high: int) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ApiError(400, f"'{name}' must be a whole number from {low} to {high}")
    return value


def _duration(name: str, raw: str) -> float:
    """A query parameter's duration (seconds, or 90s, 30m, 24h, 7d, 2w); 400 naming it otherwise."""
    try:
        return parse_duration(raw)
    except ValueError as exc:
        raise ApiError(400, f"{name}: {exc}") from None


def _replay_since(raw: str | None) -> float:
    """The replay window: `since` is seconds or a duration (90s, 30m, 24h, 7d, 2w)."""
    if raw is None:
        return REPLAY_SINCE
    since = _duration("since", raw[:40])
    if since <= 0 or len(raw) > 40:
        raise ApiError(400, f"since must be a duration longer than 0 s, like 3600 or 24h, not {raw[:40]!r}")
    return since


def _from_recorded(answer: Callable[[], dict]) -> dict:
    """`answer()`, or 409 when there are no recorded flows to answer from."""
    try:
        return answer()
    except NoFlowStore as exc:
        raise ApiError(409, str(exc)) from None
