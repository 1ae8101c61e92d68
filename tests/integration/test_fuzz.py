"""schemathesis against the served OpenAPI document: every operation any route
group describes gets a bounded number of generated requests (valid and invalid),
sent by a project's admin (so the mgmt routes are reached too). No answer may be
a 5xx or contradict the document (status code, content type, headers, body
schema), and afterwards no resource of the project may be left in a transitional
state: what the fuzzer managed to create settles, and is deleted."""
from __future__ import annotations

import asyncio
import uuid

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (content_type_conformance, response_headers_conformance,
                                 response_schema_conformance, status_code_conformance)

from tests.conftest import wait_for

pytestmark = pytest.mark.e2e

EXAMPLES = 6          # per operation: bounded, so the suite's time stays bounded
SAFE_URL = "http://127.0.0.1:9/fuzz"  # webhook targets the fuzzer invents would be called: keep them on loopback
SETTLED = {"ACTIVE", "ERROR", "HEALTHY"}
CHECKS = [status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]


class Fuzzed:
    def __init__(self, stack):
        from coffer.cli import _create_token
        self.api = stack.api_url
        self.project = f"fuzz-{uuid.uuid4().hex[:6]}"
        self.token = asyncio.run(_create_token(self.project, "admin"))
        # what the fuzzer may create stays small
        answer = self.call("put", f"/mgmt/quotas/{self.project}", {"quotas": {"instances": 2, "volumes": 4}})
        assert answer.status_code == 200, answer.text

    def call(self, method: str, path: str, body=None):
        return requests.request(method.upper(), f"{self.api}/v1.0/{self.project}{path}", json=body, timeout=30,
                                headers={"X-Auth-Token": self.token})


@pytest.fixture(scope="module")
def fuzzed(stack):
    return Fuzzed(stack)


def loopback_urls(value):
    """The body with every `url` on loopback."""
    if isinstance(value, dict):
        return {k: (SAFE_URL if k == "url" else loopback_urls(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [loopback_urls(v) for v in value]
    return value


def fuzz(operation, mode: GenerationMode, fuzzed: Fuzzed) -> None:
    """EXAMPLES generated requests for one operation (the project fixed), each answer checked."""
    fixed = {"project": fuzzed.project} if "{project}" in operation.path else None

    @given(case=operation.as_strategy(mode, path_parameters=fixed))
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def run(case):
        if isinstance(case.body, (dict, list)):
            case.body = loopback_urls(case.body)
        response = case.call(headers={"X-Auth-Token": fuzzed.token})
        # 501 is Trove's answer for what a deployment does not offer; any other 5xx is a bug
        assert response.status_code < 500 or response.status_code == 501, (
            f"{response.status_code} {response.text[:500]} for {case.as_curl_command()[:800]}")
        case.validate_response(response, checks=CHECKS)
    run()


def test_no_answer_is_a_5xx_or_contradicts_the_document(stack, fuzzed):
    """Driven by the served document (the pytest plugin of schemathesis does not
    run under this pytest, so the operations are walked here)."""
    schema = schemathesis.openapi.from_url(f"{stack.api_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    failures = []
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                fuzz(operation, mode, fuzzed)
            except Unsatisfiable:
                assert mode == GenerationMode.NEGATIVE  # an operation with no inputs has no invalid ones
            except (Exception, BaseExceptionGroup) as exc:  # every operation is tried; all failures reported together
                failures.append(f"{operation.label} ({mode.value}): {str(exc)[:1500]}")
    assert not failures, "\n\n".join(failures)


def test_nothing_is_left_stuck(fuzzed):
    """Whatever the fuzzer created reaches a settled state, then goes away when deleted."""
    def instances():
        return fuzzed.call("get", "/instances").json()["instances"]

    def settled():
        pending = [i for i in instances() if i["status"] not in SETTLED]
        return not pending or None
    wait_for(settled, 180, interval=1, what="the fuzzed project's instances to settle")
    for inst in instances():
        assert fuzzed.call("delete", f"/instances/{inst['id']}").status_code == 202
    wait_for(lambda: instances() == [], 120, interval=1, what="the fuzzed project's instances to be deleted")
    for sub in fuzzed.call("get", "/subscriptions").json()["subscriptions"]:
        assert fuzzed.call("delete", f"/subscriptions/{sub['id']}").status_code == 202
