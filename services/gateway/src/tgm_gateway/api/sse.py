"""The SSE edge: run a streaming command (its contract has `streamId`) and stream its chunks.

The command runs in the background (`runtime.spawn`) while its chunks arrive on their own subject;
when it ends, a marker joins the chunk queue, so the stream reads one queue in order: chunks, then
the command's own reply as the final `done` or `error` event.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request, Response
from sse_starlette.sse import EventSourceResponse
from tgm_contracts import REGISTRY, ErrorCode, subjects

from ..app import Runtime
from ..dispatch import Outcome, failure
from .body import BodyLimits
from .edge import json_reply, posted_command
from .http import API

#: Put on the chunk queue when the command has answered.
FINISHED = object()


def _chunk_event(item: Any) -> dict[str, str] | None:
    chunk = json.loads(item.data)
    if chunk.get("done"):
        return None  # the command's own reply carries the final result
    return {"event": "chunk", "data": json.dumps(chunk, ensure_ascii=False)}


def _final_event(outcome: Outcome) -> dict[str, str]:
    if outcome.ok:
        return {"event": "done", "data": json.dumps(outcome.reply["data"], ensure_ascii=False)}
    return {"event": "error", "data": json.dumps(outcome.reply["error"], ensure_ascii=False)}


def register(api: FastAPI, runtime: Runtime, limits: BodyLimits) -> None:
    @api.post(f"{API}/stream/{{command}}", tags=["commands"])
    async def stream(command: str, request: Request) -> Response:
        """Run a streaming command (its contract has `streamId`) and stream its output as SSE."""
        call = await posted_command(runtime, request, limits)
        if isinstance(call, Response):
            return call
        request_id, principal, payload = call.request_id, call.principal, call.payload
        cmd = REGISTRY.get(command)
        if cmd is not None and "stream_id" not in cmd.Request.model_fields:
            return json_reply(failure(ErrorCode.VALIDATION_ERROR, f"{command} does not stream"), request_id)
        stream_id = uuid.uuid4().hex
        queue: asyncio.Queue[Any] = asyncio.Queue()
        sub = await runtime.nc.subscribe(subjects.stream_chunk(stream_id), cb=queue.put)
        task = runtime.spawn(
            runtime.app.dispatcher.run(
                command, payload, principal, request_id, extra={"streamId": stream_id}
            ),
            name=f"stream {command[:100]}",
        )
        task.add_done_callback(lambda _: queue.put_nowait(FINISHED))
        first = await queue.get()
        if first is not FINISHED and json.loads(first.data).get("done"):
            # Nothing was streamed: the command ended at once (typically an error), so its reply
            # decides the answer — a plain JSON envelope with the matching status, not a stream.
            await task
        if task.done() and not task.result().ok:
            await sub.unsubscribe()
            return json_reply(task.result(), request_id)

        async def events() -> AsyncIterator[dict[str, str]]:
            try:
                item = first
                while item is not FINISHED:
                    event = _chunk_event(item)
                    if event is not None:
                        yield event
                    item = await queue.get()
                while not queue.empty():  # chunks that came in just after the reply
                    event = _chunk_event(queue.get_nowait())
                    if event is not None:
                        yield event
                yield _final_event(task.result())
            finally:
                await sub.unsubscribe()

        return EventSourceResponse(events(), headers={"x-request-id": request_id})
