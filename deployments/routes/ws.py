"""WebSocket routes: per-job updates, the broadcast channel, health pings, connection counts.

Close codes (documented in README):
- 1000: the job ended (after the `job_finished` message).
- 4400: the job id is not a UUID.  4404: no such job.
- 4408: the client read too slowly and was dropped; reconnect with `?after_seq=<last seq>`.
- 1008: a query parameter is not valid (`after_seq` not an integer 0 to 2**31-1), after an
  `error` message that names it.
- 1011: the server failed unexpectedly.

Each replica has one `Fanout` (`hub_fanout`, kept in `app.state`) that long-polls the
progress hub for every socket it serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

from actors import metrics
from actors.messages import finished_message, initial_message, is_terminal_status, update_message
from actors.progress import BROADCAST
from deployments.auth import PrincipalDep
from deployments.deps import FanoutDep, RepoDep, ServicesDep, SettingsDep, bind_request_job
from deployments.fanout import Fanout, Subscriber
from deployments.services import IngressServices
from deployments.urls import job_with_links
from storage.repository import JobRepository
from storage.schemas import INT32_MAX

log = logging.getLogger("vpa.ws")

CLOSE_JOB_ENDED = 1000
CLOSE_BAD_ID = 4400
CLOSE_NOT_FOUND = 4404
CLOSE_TOO_SLOW = 4408
REPORT_INTERVAL_S = 2.0

Message = dict[str, Any]

router = APIRouter(tags=["websockets"], dependencies=[Depends(bind_request_job)])


def hub_fanout(services: IngressServices) -> Fanout:
    """The replica's fan-out, polling the progress hub and reporting its socket counts."""

    def listen(
        cursors: dict[str, int], timeout_s: float, epoch: str | None
    ) -> Awaitable[dict[str, Any]]:
        try:
            ref = services.hub.listen.remote(cursors, timeout_s, epoch)  # sent now, not awaited
        except Exception:
            services.refresh_hub()
            raise

        async def answer() -> dict[str, Any]:
            try:
                result: dict[str, Any] = await ref
                return result
            except Exception:
                services.refresh_hub()
                raise

        return answer()

    def report(counts: dict[str, Any]) -> None:
        services.hub.report_connections.remote(services.replica_id, counts)
        jobs = sum(counts["jobs"].values())
        metrics.websocket_connections(
            {"job": jobs, "broadcast": counts["broadcast"], "health": counts["health"]}
        )

    return Fanout(listen, report, queue_size=services.settings.ws_queue_size)


async def report_loop(fanout: Fanout, interval_s: float = REPORT_INTERVAL_S) -> None:
    """Report this replica's socket counts to the hub now and then, even when idle."""
    while True:
        await asyncio.sleep(interval_s)
        fanout.report()


def with_links(message: Message) -> Message:
    """A message carrying a whole job (`initial_status`, `job_finished`) with its links."""
    return {**message, "data": job_with_links(message["data"])}


async def _send(ws: WebSocket, message: Message, timeout_s: float) -> None:
    await asyncio.wait_for(ws.send_json(message), timeout_s)


async def _send_text(ws: WebSocket, text: str, timeout_s: float) -> None:
    """Send an already encoded message (the fan-out encodes each once for all sockets);
    `asyncio.timeout`, unlike `wait_for`, starts no task per send."""
    async with asyncio.timeout(timeout_s):
        await ws.send_text(text)


async def _close(ws: WebSocket, code: int, reason: str = "") -> None:
    if ws.application_state != WebSocketState.DISCONNECTED:
        with contextlib.suppress(Exception):
            await ws.close(code=code, reason=reason)


async def _answer_pings(
    ws: WebSocket, on_status: Callable[[], Awaitable[Message]] | None = None
) -> None:
    """Read client messages until it goes away: ping → pong, get_status → status."""
    while True:
        raw = await ws.receive_text()
        try:
            msg = json.loads(raw)
        except ValueError:
            msg = {"type": raw.strip()}
        kind = msg.get("type") if isinstance(msg, dict) else None
        if kind == "ping":
            await ws.send_json({"type": "pong", "timestamp": time.time()})
        elif kind == "get_status" and on_status is not None:
            await ws.send_json(await on_status())
        else:
            await ws.send_json({"type": "error", "detail": f"unknown message type {kind!r}"})


async def _job_status(repo: JobRepository, job_id: UUID) -> Message:
    current = await asyncio.to_thread(repo.get_job, job_id)
    return with_links(initial_message(current)) if current else {"type": "error"}


async def _pump_job(
    ws: WebSocket,
    repo: JobRepository,
    job_id: UUID,
    sub: Subscriber,
    last_sent: int,
    timeout_s: float,
) -> None:
    """Send live updates in order, filling any gap from the database."""
    while True:
        update = await sub.queue.get()
        if update is None:
            await _close(ws, CLOSE_TOO_SLOW, "client too slow; reconnect with after_seq")
            return
        seq, message = update.seq, update.message
        if seq <= last_sent:
            continue
        if seq > last_sent + 1:
            job = await asyncio.to_thread(repo.get_job, job_id)
            missed = await asyncio.to_thread(repo.list_events, job_id, last_sent, None)
            for event in missed:
                if event.seq < seq:
                    await _send(ws, update_message(str(job_id), event, job), timeout_s)
        await _send_text(ws, update.text, timeout_s)
        last_sent = seq
        if is_terminal_status(message["data"].get("status")) and message["event"] in {
            "completed",
            "failed",
            "cancelled",
        }:
            job = await asyncio.to_thread(repo.get_job, job_id)
            if job is not None:
                await _send(ws, with_links(finished_message(job)), timeout_s)
            await _close(ws, CLOSE_JOB_ENDED, "job ended")
            return


async def _pump_broadcast(ws: WebSocket, sub: Subscriber, timeout_s: float) -> None:
    """What is queued goes out together, under one timeout per message it holds."""
    while True:
        batch = await sub.take()
        updates = [u for u in batch if u is not None]
        if updates:
            async with asyncio.timeout(timeout_s * len(updates)):
                for update in updates:
                    await ws.send_text(update.text)
        if len(updates) < len(batch):  # the wake-up sentinel: the queue overflowed
            await _close(ws, CLOSE_TOO_SLOW, "client too slow")
            return


@router.websocket("/ws/jobs/broadcast")
async def ws_broadcast(
    ws: WebSocket, fanout: FanoutDep, settings: SettingsDep, principal: PrincipalDep
) -> None:
    await ws.accept()
    sub = fanout.subscribe(BROADCAST, scope=principal.scope)  # an API key: its own jobs
    timeout_s = settings.ws_send_timeout_s
    try:
        await _send(ws, {"type": "connected", "channel": BROADCAST}, timeout_s)
        await _run_until_first(_pump_broadcast(ws, sub, timeout_s), _answer_pings(ws))
    finally:
        fanout.unsubscribe(sub)
        await _close(ws, 1000)


@router.websocket("/ws/health")
async def ws_health(ws: WebSocket, fanout: FanoutDep, settings: SettingsDep) -> None:
    await ws.accept()
    fanout.health_sockets += 1
    fanout.report()
    try:
        await _send(ws, {"type": "connected", "channel": "health"}, settings.ws_send_timeout_s)
        await _answer_pings(ws)
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        fanout.health_sockets -= 1
        fanout.report()


@router.websocket("/ws/{job_id}")
async def ws_job(
    ws: WebSocket,
    job_id: str,
    services: ServicesDep,
    repo: RepoDep,
    fanout: FanoutDep,
    principal: PrincipalDep,
    after_seq: Annotated[int | None, Query(ge=0, le=INT32_MAX)] = None,
) -> None:
    await ws.accept()
    timeout_s = services.settings.ws_send_timeout_s
    try:
        jid = UUID(job_id)
    except ValueError:
        await _send(ws, {"type": "error", "detail": f"{job_id!r} is not a job id"}, timeout_s)
        await _close(ws, CLOSE_BAD_ID, "invalid job id")
        return
    job = await asyncio.to_thread(repo.get_job, jid)
    if job is None or not principal.sees(job.owner):  # another key's job: not found either
        await _send(ws, {"type": "error", "detail": f"Job {jid} not found"}, timeout_s)
        await _close(ws, CLOSE_NOT_FOUND, "job not found")
        return
    sub = fanout.subscribe(str(jid), start_seq=job.last_event_seq)
    try:
        initial = with_links(initial_message(job))
        await _send(ws, {**initial, "replica": services.replica_id}, timeout_s)
        last_sent = job.last_event_seq
        if after_seq is not None and after_seq < job.last_event_seq:
            for event in await asyncio.to_thread(repo.list_events, jid, after_seq, None):
                await _send(ws, update_message(str(jid), event, job), timeout_s)
                # events written since the job was read are sent here, not again live
                last_sent = max(last_sent, event.seq)
        if is_terminal_status(job.status):
            await _send(ws, with_links(finished_message(job)), timeout_s)
            await _close(ws, CLOSE_JOB_ENDED, "job ended")
            return
        await _run_until_first(
            _pump_job(ws, repo, jid, sub, last_sent, timeout_s),
            _answer_pings(ws, partial(_job_status, repo, jid)),
        )
    except (WebSocketDisconnect, TimeoutError):
        pass
    except Exception:
        log.exception("job=%s websocket failed", jid)
        await _close(ws, 1011, "internal error")
    finally:
        fanout.unsubscribe(sub)


async def connection_status(
    services: ServicesDep, fanout: FanoutDep, principal: PrincipalDep
) -> Any:
    """Live connections; for an API key, the per-job counts of its own jobs only."""
    status: dict[str, Any] = await services.hub.connection_status.remote()
    status["this_replica"] = {"replica_id": services.replica_id, **fanout.counts()}
    if principal.admin:
        return status
    here = status["this_replica"]
    named = {*status.get("job_connections", {}), *here.get("jobs", {})}
    owner_of = await asyncio.to_thread(services.owners.of, [UUID(j) for j in named])
    mine = {str(j) for j, owner in owner_of.items() if principal.sees(owner)}
    status["job_connections"] = {
        j: n for j, n in status.get("job_connections", {}).items() if j in mine
    }
    status["job_connection_total"] = sum(status["job_connections"].values())
    here["jobs"] = {j: n for j, n in here.get("jobs", {}).items() if j in mine}
    return status


router.add_api_route("/connections/status", connection_status, methods=["GET"])
router.add_api_route("/ws/connections/status", connection_status, methods=["GET"])


async def _run_until_first(*coros: Any) -> None:
    """Run coroutines until the first ends; cancel the rest (a closed socket ends both)."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        exc = task.exception()
        if exc is not None and not isinstance(
            exc, WebSocketDisconnect | TimeoutError | RuntimeError
        ):
            raise exc
