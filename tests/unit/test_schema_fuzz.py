"""Schemathesis against the served OpenAPI document, in process through WSGI (no socket).

Every operation gets schema examples, the coverage phase (boundary values, each field wrong in
turn, undeclared methods) and random fuzzing, positive and negative, with a valid token. Every
response must be non-5xx and match the document (status code, content type, body schema); bad
input must be refused; a 405 must carry an `Allow` header that matches the document."""

import atexit
import os
import tempfile

import schemathesis
from hypothesis import HealthCheck, settings

from segctl.api import Api
from segctl.config import Sources
from segctl.core.events import EventLog
from segctl.runtime import Runtime

from .flowedges import SHIPPED_EDGES, recorded_store

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOKEN = "s3cret-token-for-schemathesis"

# Built at collection: the pytest integration wants the schema then. The shipped files are only
# read (a reload re-reads them), and no state folder means no state is written; the flow store
# (recorded flows to map, suggest from and replay; the fuzzed calls' decisions go there too) is
# a real one in a folder of its own, removed at exit.
_FOLDER = tempfile.TemporaryDirectory(prefix="segctl-schema-fuzz-")
atexit.register(_FOLDER.cleanup)
_STORE = recorded_store(os.path.join(_FOLDER.name, "flows.sqlite"), SHIPPED_EDGES)
RUNTIME = Runtime(
    Sources(f"{ROOT}/policies/directory.yaml", f"{ROOT}/policies/policy.yaml"), EventLog(), None, store=_STORE
)
CONFIG = schemathesis.Config.from_dict(
    {
        "auth": {"openapi": {"bearer": {"bearer": TOKEN}}},
        "operations": [
            {
                # A host the schema allows may still be an address no host owns (multicast, the
                # controller's own): refused with 400 by design, see test_api.py.
                "include-path": "/v1/quarantine",
                "include-method": "POST",
                "checks": {"positive_data_acceptance": {"expected-statuses": [200, 400, 404]}},
            },
            {
                # `since` is any string to the schema; one that is not a duration is refused (400).
                "include-path": "/v1/hosts/{host}/reach",
                "include-method": "GET",
                "checks": {"positive_data_acceptance": {"expected-statuses": [200, 400, 404]}},
            },
            {
                # The schema gives a draft's shape only; a rule that names no group is refused (400).
                "include-path": "/v1/policy/simulate",
                "include-method": "POST",
                "checks": {"positive_data_acceptance": {"expected-statuses": [200, 400]}},
            },
        ],
    }
)
schema = schemathesis.openapi.from_wsgi(
    "/v1/openapi.json",
    Api(RUNTIME, {TOKEN: "schemathesis"}),
    config=CONFIG,
    headers={"Authorization": f"Bearer {TOKEN}"},
)


@schema.parametrize()
@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_answers_as_the_openapi_document_says(case):
    case.call_and_validate()
