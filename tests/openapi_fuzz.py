"""A bounded schemathesis run over every operation of vpa's OpenAPI schema: examples that
fit the schema and examples that break it, a fixed number of each, derandomized, with the
responses that were 5xx collected rather than stopping at the first.

Submitted jobs never reach the network: every `youtube_url` a case sends that the schema
allows (text of 1 to 2048 characters) is replaced by `SAFE_URL`, a closed port on loopback
(the deployment under test allows private addresses), so no name is resolved and every
fetch fails at once. That also makes positive cases create jobs, where random text would
mostly be refused for its scheme; the URL checks themselves have tests of their own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.core.result import Err

SAFE_URL = "http://127.0.0.1:9/fuzz.mp4"  # port 9 (discard): nothing listens there


@dataclass
class FuzzReport:
    """What a run sent: cases and status codes per operation, each 5xx with its cause."""

    cases: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, Counter[int]] = field(default_factory=dict)
    server_errors: list[str] = field(default_factory=list)


def safe_urls(value: Any) -> Any:
    """`value` with every `youtube_url` in it that the schema allows replaced by `SAFE_URL`."""
    if isinstance(value, list):
        return [safe_urls(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {k: safe_urls(v) for k, v in value.items()}
    url = out.get("youtube_url")
    if isinstance(url, str) and 1 <= len(url) <= 2048:
        out["youtube_url"] = SAFE_URL
    return out


def fuzz(
    schema: schemathesis.BaseSchema,
    send: Callable[[Case], Any],
    max_examples: int,
    job_id: str,
) -> FuzzReport:
    """Run `max_examples` positive and as many negative cases per operation through `send`
    (which returns a response with `status_code` and `text`); then, as random ids are only
    404s, as many positive cases of each operation on one job on `job_id`, an existing job,
    deleting it last."""
    operations = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()  # the schema itself is broken: no operation to fuzz
        operations.append(result.ok())
    runs: list[tuple[Any, GenerationMode, dict[str, Any] | None]] = []
    for operation in operations:
        runs += [(operation, GenerationMode.POSITIVE, None)]
        runs += [(operation, GenerationMode.NEGATIVE, None)]
    on_job = [op for op in operations if "{job_id}" in op.path]
    on_job.sort(key=lambda op: op.method.upper() == "DELETE")
    runs += [(op, GenerationMode.POSITIVE, {"job_id": job_id}) for op in on_job]
    report = FuzzReport()
    for operation, mode, path_parameters in runs:
        known = " on a known job" if path_parameters else ""
        label = f"{operation.method.upper()} {operation.path} ({mode.value}{known})"
        report.cases[label] = 0
        report.statuses[label] = Counter()
        strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)
        try:
            _runner(strategy, send, report, label, max_examples)()
        except Unsatisfiable:  # nothing in the operation to break (no parameters, no body)
            assert mode is GenerationMode.NEGATIVE, label
    return report


def _runner(
    strategy: Any, send: Callable[[Case], Any], report: FuzzReport, label: str, max_examples: int
) -> Callable[[], None]:
    @settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Case) -> None:
        report.cases[label] += 1
        if isinstance(case.body, dict | list):
            case.body = safe_urls(case.body)
        response = send(case)
        report.statuses[label][response.status_code] += 1
        if response.status_code >= 500:
            report.server_errors.append(
                f"{response.status_code} {case.method} {case.formatted_path} "
                f"query={case.query} body={case.body!r:.300}: {response.text[:300]}"
            )

    return run
