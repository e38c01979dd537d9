"""One long-poll listener per ingress replica, fanning hub messages out to its sockets.

Each socket is a `Subscriber` with a bounded queue. Delivery never awaits a socket: a
subscriber whose queue is full is dropped (closed with code 4408), so a slow client never
stalls the others. Job-channel sequence numbers are the job's event numbers, so a gap (the
hub's bounded log rolled over, or the hub restarted) is filled from the database.

Each message is encoded once for all the sockets that get it (`Update.text`). The hub
hands out each job's messages in `seq` order; the broadcast stream is also checked here
per job (after a hub restart the new hub may hold what the old one already delivered), so
a broadcast socket gets every job's updates in order and none twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from actors.messages import OWNER
from actors.progress import BROADCAST

log = logging.getLogger("vpa.fanout")
Message = dict[str, Any]
Listen = Callable[[dict[str, int], float, str | None], Awaitable[dict[str, Any]]]
BROADCAST_JOBS_TRACKED = 10_000  # jobs whose last broadcast seq a replica remembers


def encode(message: Message) -> str:
    """A message as the text frame Starlette's `send_json` would send."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class Update:
    """One message for the sockets of a channel, encoded once for all of them."""

    seq: int
    message: Message
    text: str
    owner: str | None = None  # the job's owner (`actors.messages.OWNER`), if known


def visible(update: Update, scope: str | None) -> bool:
    """Whether a socket that sees the jobs of `scope` (None: every job) gets `update`; an
    update of unknown owner goes to those that see every job only."""
    return scope is None or update.owner == scope


class Subscriber:
    def __init__(self, channel: str, queue_size: int, scope: str | None = None) -> None:
        self.channel = channel
        self.scope = scope  # the owner whose jobs it gets; None: every job
        self.queue: asyncio.Queue[Update | None] = asyncio.Queue(maxsize=queue_size)
        self.dropped = False

    async def take(self) -> list[Update | None]:
        """The next update (waiting for one) and every one queued behind it: a socket that
        fell behind catches up in one wake-up instead of one per message."""
        items = [await self.queue.get()]
        while not self.queue.empty():
            items.append(self.queue.get_nowait())
        return items

    def offer(self, message: Update) -> bool:
        if self.dropped:
            return False
        try:
            self.queue.put_nowait(message)
            return True
        except asyncio.QueueFull:
            self.dropped = True
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()  # make room for the wake-up sentinel
            self.queue.put_nowait(None)
            return False


class Fanout:
    def __init__(
        self,
        listen: Listen,
        report: Callable[[dict[str, Any]], None],
        queue_size: int = 256,
        poll_timeout_s: float = 15.0,
    ) -> None:
        self._listen = listen
        self._report = report
        self._queue_size = queue_size
        self._poll_timeout_s = poll_timeout_s
        self._subs: dict[str, set[Subscriber]] = {}
        self._cursors: dict[str, int] = {}
        self._epoch: str | None = None
        self._broadcast_last: OrderedDict[str, int] = OrderedDict()  # job -> seq sent
        self._changed = asyncio.Event()
        self.health_sockets = 0
        self.dropped_total = 0

    # ------------------------------------------------------------- subscriptions
    def subscribe(self, channel: str, start_seq: int = 0, scope: str | None = None) -> Subscriber:
        """Follow a channel. A new job channel is polled from `start_seq` on; a socket that
        joins a channel already polled further sees a gap and fills it from the database.
        `scope`: the owner whose jobs the socket gets (None: every job)."""
        sub = Subscriber(channel, self._queue_size, scope)
        subs = self._subs.setdefault(channel, set())
        subs.add(sub)
        if channel == BROADCAST and len(subs) == 1:
            self._cursors[BROADCAST] = -1  # follow the broadcast from "now"
            self._changed.set()
        elif channel != BROADCAST and channel not in self._cursors:
            self._cursors[channel] = start_seq
            self._changed.set()
        self.report()
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        subs = self._subs.get(sub.channel)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.channel]
                self._cursors.pop(sub.channel, None)
        self.report()

    def counts(self) -> dict[str, Any]:
        jobs = {ch: len(s) for ch, s in self._subs.items() if ch != BROADCAST}
        broadcast = len(self._subs.get(BROADCAST, ()))
        return {
            "jobs": jobs,
            "broadcast": broadcast,
            "health": self.health_sockets,
            "total": sum(jobs.values()) + broadcast + self.health_sockets,
        }

    def report(self) -> None:
        try:
            self._report(self.counts())
        except Exception:
            log.debug("connection report failed", exc_info=True)

    # ------------------------------------------------------------- the loop
    def _deliver(self, channel: str, items: list[tuple[int, Message]]) -> None:
        subs = self._subs.get(channel, ())
        for seq, message in items:
            self._cursors[channel] = max(self._cursors.get(channel, 0), seq)
            if channel == BROADCAST and not self._first_broadcast(message):
                continue
            owner = message.get(OWNER)
            if owner is not None:  # for choosing the sockets, never sent to one
                message = {k: v for k, v in message.items() if k != OWNER}
            update = Update(int(message.get("seq", seq)), message, encode(message), owner)
            for sub in list(subs):
                if visible(update, sub.scope) and not sub.offer(update):
                    self.dropped_total += 1

    def _first_broadcast(self, message: Message) -> bool:
        """Whether a broadcast job update comes after every one of its job sent so far."""
        job_id, seq = message.get("job_id"), message.get("seq")
        if not isinstance(job_id, str) or not isinstance(seq, int):
            return True
        last = self._broadcast_last.get(job_id, 0)
        if seq <= last:
            return False
        self._broadcast_last[job_id] = seq
        self._broadcast_last.move_to_end(job_id)
        if len(self._broadcast_last) > BROADCAST_JOBS_TRACKED:
            self._broadcast_last.popitem(last=False)
        return True

    async def run(self) -> None:
        """Long-poll the hub forever; restart the poll when the set of channels changes.

        The next poll goes out before a poll's messages go to the sockets: a message the
        hub gets while this replica is still sending the last ones waits in the hub for a
        poll already there, not for the sends (hundreds of socket tasks on this loop) to
        finish before the next poll is even asked for."""
        poll: asyncio.Future[dict[str, Any]] | None = None
        try:
            while True:
                if self._changed.is_set() and poll is not None:
                    poll.cancel()  # the channels changed: ask again for the new set
                    poll = None
                self._changed.clear()
                if not self._cursors:  # no socket follows anything: no polling at all
                    if poll is not None:
                        poll.cancel()
                        poll = None
                    await self._changed.wait()
                    continue
                if poll is None:
                    poll = self._poll()
                changed: asyncio.Future[Any] = asyncio.ensure_future(self._changed.wait())
                try:
                    done, _ = await asyncio.wait(
                        {poll, changed}, return_when=asyncio.FIRST_COMPLETED
                    )
                finally:
                    changed.cancel()
                if poll not in done:
                    continue
                finished, poll = poll, None
                try:
                    result = finished.result()
                except Exception:
                    log.warning("progress hub poll failed; retrying", exc_info=True)
                    await asyncio.sleep(0.5)
                    continue
                channels = self._accept(result)
                if self._cursors and not self._changed.is_set():
                    poll = self._poll()
                for channel, items in channels.items():
                    if channel in self._cursors:
                        self._deliver(channel, items)
        except asyncio.CancelledError:
            if poll is not None:
                poll.cancel()
            raise

    def _poll(self) -> asyncio.Future[dict[str, Any]]:
        try:
            answer = self._listen(dict(self._cursors), self._poll_timeout_s, self._epoch)
        except Exception as exc:  # refused before it was sent: the loop retries it
            failed: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
            failed.set_exception(exc)
            return failed
        return asyncio.ensure_future(answer)

    def _accept(self, result: dict[str, Any]) -> dict[str, list[tuple[int, Message]]]:
        """Take a poll's answer: the hub's epoch and heads, every channel's cursor moved
        past what it brought; returns the messages, not yet delivered."""
        epoch = result.get("epoch")
        if self._epoch is not None and epoch != self._epoch and BROADCAST in self._cursors:
            self._cursors[BROADCAST] = 0  # the hub restarted: its broadcast seq restarted
        self._epoch = epoch
        for channel, head in result.get("heads", {}).items():
            if channel in self._cursors:
                self._cursors[channel] = head  # the broadcast starts at "now", not history
        channels: dict[str, list[tuple[int, Message]]] = result["channels"]
        for channel, items in channels.items():
            if channel in self._cursors and items:
                self._cursors[channel] = max(self._cursors[channel], items[-1][0])
        return channels
