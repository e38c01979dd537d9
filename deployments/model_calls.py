"""Running blocking model work from an async Serve replica, and the wire format of results.

A replica method runs the model in a worker thread and streams dictionaries back:
`{"type": "progress", "fraction", "message"}` while it works, then exactly one
`{"type": "result", "result": ...}` or `{"type": "error", "error": {...}}`. Errors travel
as data, not exceptions, so their `code` and `retryable` survive every hop.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import AsyncIterator, Callable
from typing import Any

from pipeline.errors import PipelineError
from pipeline.types import CancelToken, ProgressCallback

Work = Callable[[ProgressCallback, CancelToken], Any]


async def stream_work(work: Work) -> AsyncIterator[dict[str, Any]]:
    """Run `work(progress, cancel)` in a thread; yield its progress, then its outcome.

    If the caller goes away (the response is cancelled), the cancel token is set so the
    work stops at its next check instead of running on for nobody.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    cancel = CancelToken()

    def progress(fraction: float, message: str) -> None:
        item = {"type": "progress", "fraction": float(fraction), "message": message}
        loop.call_soon_threadsafe(queue.put_nowait, item)

    # The worker thread runs in a copy of this context: its log lines carry the job id.
    future = loop.run_in_executor(None, contextvars.copy_context().run, work, progress, cancel)
    try:
        while not future.done() or not queue.empty():
            getter = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait({getter, future}, return_when=asyncio.FIRST_COMPLETED)
            if getter in done:
                yield getter.result()
            else:
                getter.cancel()
        try:
            result = future.result()
        except PipelineError as err:
            yield {"type": "error", "error": err.to_dict()}
            return
        except Exception as exc:  # a bug or an unexpected library error: report, don't crash
            yield {
                "type": "error",
                "error": {"message": f"{type(exc).__name__}: {exc}", "code": "internal_error"},
            }
            return
        yield {"type": "result", "result": result}
    finally:
        if not future.done():
            cancel.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(asyncio.shield(future), 30)


def cuda_devices() -> int:
    """GPUs CUDA can use here (0 on a CPU machine, even where Ray declared GPUs)."""
    try:
        import ctranslate2

        return int(ctranslate2.get_cuda_device_count())
    except Exception:
        return 0


def resolve_device(device: str) -> str:
    """`auto` → `cuda` where a GPU is usable, else `cpu`; other values pass through."""
    if device != "auto":
        return device
    return "cuda" if cuda_devices() > 0 else "cpu"


def replica_info() -> dict[str, Any]:
    """Which replica this is and what Ray gave it (GPUs included), for /workers and tests."""
    import ray
    from ray import serve

    try:
        replica = serve.get_replica_context().replica_tag
    except Exception:
        replica = None
    context = ray.get_runtime_context()
    return {
        "replica": replica,
        "node": context.get_node_id(),
        "assigned_resources": context.get_assigned_resources(),
        "gpu_ids": [str(g) for g in ray.get_gpu_ids()],
    }
