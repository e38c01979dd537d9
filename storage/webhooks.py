"""Webhook deliveries in the database: the row written with a job's terminal status
(`deliveries_for`, called by `JobRepository.transition` inside its transaction), and the
queries of the coordinator's sender (actors/webhooks.py), mixed into `JobRepository`.

Writing the delivery in the transaction that ends the job (an outbox) means no finish is
ever announced that did not happen, and none that happened is lost to a crash: the sender
finds every pending row again when the coordinator starts.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from storage.links import public_job
from storage.models import TERMINAL_STATUSES, EventType, Job, JobEvent, WebhookDelivery, as_utc
from storage.schemas import iso_z

PENDING = "pending"
DELIVERED = "delivered"
GAVE_UP = "gave_up"
# The events that end a job, each announced as "job.<status>".
ENDING_EVENTS = frozenset({EventType.completed, EventType.failed, EventType.cancelled})


def new_delivery_id() -> str:
    """A `webhook-id`: unique per delivery, the same on each of its attempts."""
    return f"msg_{uuid.uuid4().hex}"


def webhook_body(job: Job, event_type: str, at: datetime) -> str:
    """The Standard Webhooks payload: the event's type and time, and the job exactly as
    `GET /api/v1/jobs/{id}` shows it (links included) as its data."""
    data = public_job(job).model_dump(mode="json")
    payload = {"type": event_type, "timestamp": iso_z(at), "data": data}
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def deliveries_for(job: Job, event: JobEvent) -> list[WebhookDelivery]:
    """The delivery to write with `event`: one when it ends a job that has a webhook_url."""
    if job.webhook_url is None or event.type not in ENDING_EVENTS:
        return []
    if job.status not in TERMINAL_STATUSES:
        return []
    event_type = f"job.{job.status.value}"
    return [
        WebhookDelivery(
            id=new_delivery_id(),
            job_id=job.id,
            event_type=event_type,
            url=job.webhook_url,
            body=webhook_body(job, event_type, event.created_at),
            next_attempt_at=event.created_at,
            created_at=event.created_at,
        )
    ]


class WebhookQueries:
    """Mixed into `JobRepository`, which provides the sessions."""

    def _session(self) -> Session:
        raise NotImplementedError

    def due_webhooks(
        self, now: datetime, limit: int, skip: Collection[str] = ()
    ) -> list[WebhookDelivery]:
        """Up to `limit` pending deliveries due by `now`, earliest first, but none in `skip`
        (those being sent)."""
        stmt = (
            select(WebhookDelivery)
            .where(
                col(WebhookDelivery.status) == PENDING,
                col(WebhookDelivery.next_attempt_at) <= as_utc(now),
                col(WebhookDelivery.id).not_in(list(skip)),
            )
            .order_by(col(WebhookDelivery.next_attempt_at).asc(), col(WebhookDelivery.id))
            .limit(limit)
        )
        with self._session() as session:
            return list(session.exec(stmt).all())

    def next_webhook_due(self, skip: Collection[str] = ()) -> datetime | None:
        """When the earliest pending delivery not in `skip` is due; None if none is pending."""
        stmt = select(func.min(col(WebhookDelivery.next_attempt_at))).where(
            col(WebhookDelivery.status) == PENDING, col(WebhookDelivery.id).not_in(list(skip))
        )
        with self._session() as session:
            due = session.exec(stmt).one()
        return None if due is None else as_utc(due)

    def record_webhook_attempt(
        self,
        delivery_id: str,
        *,
        attempts: int,
        status: str,
        next_attempt_at: datetime,
        last_error: str | None,
    ) -> bool:
        """Store how an attempt went; False if the delivery is gone (its job deleted)."""
        stmt = (
            sa.update(WebhookDelivery)
            .where(col(WebhookDelivery.id) == delivery_id)
            .values(
                attempts=attempts,
                status=status,
                next_attempt_at=as_utc(next_attempt_at),
                last_error=last_error,
            )
        )
        with self._session() as session:
            result = session.execute(stmt)
            session.commit()
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def webhook_deliveries(self, job_id: uuid.UUID) -> list[WebhookDelivery]:
        """A job's deliveries, oldest first."""
        stmt = (
            select(WebhookDelivery)
            .where(col(WebhookDelivery.job_id) == job_id)
            .order_by(col(WebhookDelivery.created_at).asc(), col(WebhookDelivery.id))
        )
        with self._session() as session:
            return list(session.exec(stmt).all())
