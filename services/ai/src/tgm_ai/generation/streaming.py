"""Streamed generation: with a `streamId`, text deltas go out as `StreamChunk`s on core NATS
(`tgm.stream.<streamId>`), then exactly one final chunk: the whole response, or the error."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel
from tgm_contracts import ErrorCode, subjects
from tgm_contracts.models.ai import StreamChunk
from tgm_runtime import DomainError, ServiceRuntime

from ..providers.service import Sink

ResultT = TypeVar("ResultT", bound=BaseModel)


class ChunkPublisher:
    """Publishes deltas, then exactly one final chunk, on `tgm.stream.<streamId>` (core NATS)."""

    def __init__(self, runtime: ServiceRuntime[Any], stream_id: str) -> None:
        self.runtime = runtime
        self.subject = subjects.stream_chunk(stream_id)
        self.seq = 0

    async def _send(self, chunk: StreamChunk) -> None:
        await self.runtime.broker.publish(chunk.wire(), subject=self.subject)
        self.seq += 1

    async def delta(self, text: str) -> None:
        if text:
            await self._send(StreamChunk(seq=self.seq, delta=text))

    async def done(self, data: BaseModel) -> None:
        await self._send(
            StreamChunk(seq=self.seq, done=True, data=data.model_dump(mode="json", by_alias=True))
        )

    async def failed(self, code: str, message: str) -> None:
        await self._send(StreamChunk(seq=self.seq, done=True, error={"code": code, "message": message}))


async def streamed(
    runtime: ServiceRuntime[Any], stream_id: str | None, run: Callable[[Sink | None], Awaitable[ResultT]]
) -> ResultT:
    """`run(sink)`; with a stream id, its deltas and its outcome also go out as chunks."""
    if stream_id is None:
        return await run(None)
    pub = ChunkPublisher(runtime, stream_id)
    try:
        result = await run(pub.delta)
    except DomainError as exc:
        await pub.failed(exc.code.value, exc.message)
        raise
    except Exception:
        await pub.failed(ErrorCode.INTERNAL.value, "generation failed inside ai; see its logs")
        raise
    await pub.done(result)
    return result
