"""`WebhookSender`: a job's end announced to its webhook_url, signed, retried, durable.

Each delivery is a row (storage/webhooks.py) written in the transaction that ends the job.
The coordinator (`CoordinatorCore`) holds one sender and starts it with itself (`start`):
it reads the due deliveries from the database, POSTs each in a task of its own (httpx's
async client: the event loop never waits on a receiver), and waits on the coordinator's
timer until the next one is due or a job ends (`wake`). Rules it keeps:
- every attempt is signed anew as Standard Webhooks says: `webhook-id` is the delivery's
  id, the same on every attempt; `webhook-timestamp` the attempt's unix time;
  `webhook-signature` "v1," + base64 HMAC-SHA256 of "{id}.{timestamp}.{body}" under the
  decoded WEBHOOK_SECRET; the body is the same bytes on every attempt;
- a 2xx answer is delivered; any other (redirects are not followed), a timeout or a
  connection error is tried again after the backoff, up to `max_attempts` in all; an
  address the URL policy refuses now, or no WEBHOOK_SECRET, gives up at once;
- every attempt is an event in the job's log (`webhook_delivered`, `webhook_failed`,
  `webhook_gave_up`), written and published like every event, and then the row is updated:
  a crash between the POST and that update sends the delivery again, under the same
  webhook-id (at least once; receivers deduplicate by it);
- a database found unreachable ends the scan and is reported to the coordinator's outage
  watch; the scan is tried again after a backoff.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import httpx

from actors import metrics
from actors.clock import Timer, finished_within
from actors.coordinator_config import CoordinatorConfig, WebhookConfig, webhook_delay_s
from actors.db_outage import retry_delay_s
from actors.running_job import JobWriter
from config.settings import webhook_secret_bytes
from pipeline.errors import PolicyError
from pipeline.media.urlpolicy import check_url
from storage.models import EventType, WebhookDelivery
from storage.webhooks import DELIVERED, GAVE_UP, PENDING

MAX_IN_FLIGHT = 16  # deliveries being sent at once
IDLE_S = 60.0  # the database is read at least this often, even with nothing due
SCAN_RETRY_MAX_S = 30.0
log = logging.getLogger("vpa.coordinator")

UrlCheck = Callable[[str, bool], str]
"""`check_url(url, allow_private=...)`: the URL, or PolicyError."""


def _check(url: str, allow_private: bool) -> str:
    return check_url(url, allow_private=allow_private)


def sign(key: bytes, msg_id: str, timestamp: int, body: str) -> str:
    """The `webhook-signature` of one attempt (Standard Webhooks, v1)."""
    digest = hmac.new(key, f"{msg_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signed_headers(secret: str, msg_id: str, timestamp: int, body: str) -> dict[str, str]:
    """The headers of one attempt, signed with `secret` ("whsec_<base64>")."""
    return {
        "content-type": "application/json",
        "user-agent": "vpa-webhooks",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(webhook_secret_bytes(secret), msg_id, timestamp, body),
    }


@dataclass(frozen=True)
class Outcome:
    """How one attempt went."""

    ok: bool
    status_code: int | None = None
    error: str | None = None
    final: bool = False  # trying again cannot help


class Coordinator(Protocol):
    """What the sender reads of the coordinator (`CoordinatorCore`)."""

    config: CoordinatorConfig

    def saw_outage(self, exc: BaseException) -> bool: ...


class WebhookSender:
    """Hooks itself to `write` (`JobWriter.on_webhook`), so a job's end wakes it at once."""

    def __init__(
        self,
        coordinator: Coordinator,
        write: JobWriter,
        now: Callable[[], datetime],
        timer: Timer,
        transport: httpx.AsyncBaseTransport | None = None,
        check: UrlCheck = _check,
    ) -> None:
        self._write = write
        self._db = write.db
        self._repo = write.repo
        self._coordinator = coordinator
        self._now = now
        self._timer = timer
        self._client = httpx.AsyncClient(transport=transport, follow_redirects=False)
        self._check = check
        self.sending: set[str] = set()  # ids of the deliveries being sent now
        self._tasks: set[asyncio.Task[Outcome]] = set()
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Future[None] | None = None
        write.on_webhook = self.wake

    def start(self) -> None:
        """Start sending, once (`close` stops it): what is pending in the database first."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run())

    async def close(self) -> None:
        tasks = [t for t in (self._task, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._client.aclose()

    def wake(self) -> None:
        """Read the database now: a delivery was written, or an attempt ended."""
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    async def run(self) -> None:
        """Send what is due, then wait for the next due time or a wake-up, for ever."""
        failures = 0
        while True:
            self._wake = asyncio.get_running_loop().create_future()
            try:
                wait_s = await self.send_due()
                failures = 0
            except Exception as exc:
                failures += 1
                wait_s = min(retry_delay_s(failures) * 5, SCAN_RETRY_MAX_S)
                if self._coordinator.saw_outage(exc):
                    log.warning("webhooks: the database is unreachable; trying again")
                else:
                    log.exception("webhooks: reading the pending deliveries failed")
            await finished_within(self._wake, wait_s, self._timer)

    async def send_due(self) -> float:
        """Start each due delivery (at most `MAX_IN_FLIGHT` at once); seconds until the
        next one is due."""
        room = MAX_IN_FLIGHT - len(self.sending)
        if room > 0:
            due = await self._db.run(self._repo.due_webhooks, self._now(), room, set(self.sending))
            for delivery in due:
                self._spawn(delivery)
        if len(self.sending) >= MAX_IN_FLIGHT:
            return IDLE_S  # each attempt that ends wakes the loop
        next_due = await self._db.run(self._repo.next_webhook_due, set(self.sending))
        if next_due is None:
            return IDLE_S
        return min(max((next_due - self._now()).total_seconds(), 0.0), IDLE_S)

    def _spawn(self, delivery: WebhookDelivery) -> None:
        self.sending.add(delivery.id)
        task = asyncio.get_running_loop().create_task(self.attempt(delivery))
        self._tasks.add(task)

        def ended(done: asyncio.Task[Outcome]) -> None:
            self._tasks.discard(done)
            self.sending.discard(delivery.id)
            self.wake()

        task.add_done_callback(ended)

    async def attempt(self, delivery: WebhookDelivery) -> Outcome:
        """One attempt: POST, then the job's event and the row's new state."""
        config = self._coordinator.config.webhooks
        number = delivery.attempts + 1
        outcome = await self._post(delivery, config)
        final = outcome.ok or outcome.final or number >= config.max_attempts
        delay_s = 0.0 if final else webhook_delay_s(config, number)
        status = DELIVERED if outcome.ok else GAVE_UP if final else PENDING
        metrics.webhook_attempt(DELIVERED if outcome.ok else GAVE_UP if final else "failed")
        try:
            await self._log_attempt(delivery, (number, config.max_attempts), outcome, delay_s)
            await self._db.run(
                self._repo.record_webhook_attempt,
                delivery.id,
                attempts=number,
                status=status,
                next_attempt_at=self._now() + timedelta(seconds=delay_s),
                last_error=outcome.error,
            )
        except Exception as exc:  # the row is left as it was: the attempt is made again
            if not self._coordinator.saw_outage(exc):
                log.exception("webhooks: recording attempt %d of %s failed", number, delivery.id)
        return outcome

    async def _post(self, delivery: WebhookDelivery, config: WebhookConfig) -> Outcome:
        if config.secret is None:
            error = "WEBHOOK_SECRET is not set, and vpa sends no unsigned webhooks"
            return Outcome(ok=False, error=error, final=True)
        try:
            await asyncio.to_thread(self._check, delivery.url, config.allow_private_urls)
        except PolicyError as exc:  # an unresolvable name may resolve later
            return Outcome(ok=False, error=exc.message, final=exc.code != "url_unresolvable")
        timestamp = int(self._now().timestamp())
        headers = signed_headers(config.secret, delivery.id, timestamp, delivery.body)
        body = delivery.body.encode("utf-8")
        try:
            async with asyncio.timeout(config.timeout_s):
                request = self._client.stream(
                    "POST", delivery.url, content=body, headers=headers, timeout=config.timeout_s
                )
                async with request as response:  # the answer's body is never read
                    code = response.status_code
        except (TimeoutError, httpx.TimeoutException):
            return Outcome(ok=False, error=f"no answer within {config.timeout_s:g} s")
        except httpx.HTTPError as exc:
            return Outcome(ok=False, error=f"{type(exc).__name__}: {exc}".rstrip(": "))
        if 200 <= code < 300:
            return Outcome(ok=True, status_code=code)
        return Outcome(ok=False, status_code=code, error=f"HTTP {code}")

    async def _log_attempt(
        self, delivery: WebhookDelivery, count: tuple[int, int], outcome: Outcome, delay_s: float
    ) -> None:
        """The attempt as an event of the job; `delay_s` 0 means it was the last."""
        number, of = count
        what = f"webhook {delivery.event_type}"
        data = {
            "webhook_id": delivery.id,
            "event_type": delivery.event_type,
            "attempt": number,
            "max_attempts": of,
            "status_code": outcome.status_code,
            "error": outcome.error,
        }
        if outcome.ok:
            event = EventType.webhook_delivered
            message = f"{what} delivered (attempt {number} of {of}, HTTP {outcome.status_code})"
        elif delay_s > 0:
            event = EventType.webhook_failed
            message = (
                f"{what} attempt {number} of {of} failed: {outcome.error}; next in {delay_s:g} s"
            )
            data["next_attempt_in_s"] = delay_s
        else:
            event = EventType.webhook_gave_up
            message = f"{what} not delivered: {outcome.error} (attempt {number} of {of}); gave up"
        await self._write(str(delivery.job_id), event, message=message, data=data)
        if not outcome.ok:
            log.warning("job %s: %s", delivery.job_id, message)
