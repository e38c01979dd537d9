"""schemathesis over the live deployment's `/openapi.json`: every operation, examples that
fit the schema and examples that break it, and not one 5xx.

The run is bounded by a number of examples (`MAX_EXAMPLES` of each kind per operation,
derandomized, so every run sends the same cases), not by a clock. It gets a deployment of
its own: it clears the queue and deletes jobs. Its jobs cannot reach the network
(`tests/openapi_fuzz.py`).
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
import schemathesis
from schemathesis import Case

from tests.integration.conftest import VpaApp
from tests.openapi_fuzz import SAFE_URL, fuzz

MAX_EXAMPLES = 20
OPERATIONS = 20  # the schema's operations today; fewer means a router fell out of the schema


@pytest.fixture(scope="module")
def fuzzed(deploy_vpa: Any) -> VpaApp:
    return deploy_vpa(job_timeout=10.0)


def test_no_server_errors_on_any_operation(fuzzed: VpaApp) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzzed.base_url}/openapi.json")
    with requests.Session() as session:

        def send(case: Case) -> Any:
            return case.call(base_url=fuzzed.base_url, session=session, timeout=30)

        job_id = fuzzed.submit(SAFE_URL, max_retries=0)["id"]
        report = fuzz(schema, send, MAX_EXAMPLES, job_id)
    assert report.server_errors == []
    operations = {label.split(" (", 1)[0] for label in report.cases}
    assert len(operations) >= OPERATIONS, sorted(operations)
    positive = {label: n for label, n in report.cases.items() if "(positive" in label}
    assert all(n >= 1 for n in positive.values()), positive
    assert sum(report.cases.values()) >= OPERATIONS * MAX_EXAMPLES
    # Valid submissions made jobs; the known job's routes answered other than 404.
    assert report.statuses["POST /api/v1/jobs/ (positive)"][201] > 0, report.statuses
    events = report.statuses["GET /api/v1/jobs/{job_id}/events (positive on a known job)"]
    assert events[200] > 0, report.statuses
    # Jobs the fuzzer submitted all point at the closed loopback port, never elsewhere.
    jobs = fuzzed.client.get("/api/v1/jobs/", params={"limit": 100}).json()["data"]
    assert {job["youtube_url"] for job in jobs} <= {SAFE_URL}
    assert fuzzed.client.get("/health").status_code == 200
