"""What the model thread does with a batch of jobs: chat batches, streamed chats, images.

Runs only on the scheduler's worker thread, so it is the one place that calls the engine.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

from PIL import Image

from januspro.engine import ChatOptions, ChatResult, ImageOptions, ImageResult, Janus
from januspro.errors import JanusError
from januspro.processing.chat_format import Message
from januspro.server.scheduler import Cancelled, Job

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChatPayload:
    """One chat request: `len(seeds)` answers (the request's n) to one conversation."""

    conversation: list[Message]
    options: ChatOptions
    seeds: tuple[int, ...]


@dataclass(frozen=True)
class StreamPayload:
    """A streamed chat: each text piece goes to `sink` (thread-safe) as it is decoded; the
    job's result is the finished ChatResult."""

    conversation: list[Message]
    options: ChatOptions
    sink: Callable[[str], None]


@dataclass(frozen=True)
class ImagePayload:
    prompt: str
    options: ImageOptions
    upscale: int | None = None
    upscale_weights: str | None = None


@dataclass(frozen=True)
class ImageOutput:
    result: ImageResult
    images: list[Image.Image]  # upscaled when asked
    upscale_method: str | None


class ModelWorker:
    """The scheduler's executor: settles every job's future with a result or an exception."""

    def __init__(self, janus: Janus) -> None:
        self.janus = janus

    def __call__(self, jobs: list[Job]) -> None:
        kind = jobs[0].kind
        if kind == "chat":
            self._chat(jobs)
            return
        for job in jobs:  # streams and images never share a batch; be safe anyway
            try:
                job.future.set_result(self._stream(job) if kind == "stream" else self._images(job))
            except (JanusError, Cancelled) as exc:
                job.future.set_exception(exc)

    def _chat(self, jobs: list[Job]) -> None:
        conversations: list[list[Message]] = []
        seeds: list[int] = []
        for job in jobs:
            payload: ChatPayload = job.payload
            conversations += [payload.conversation] * len(payload.seeds)
            seeds += payload.seeds
        try:
            results = self.janus.chat_batch(conversations, jobs[0].payload.options, seeds)
        except JanusError as exc:
            if len(jobs) > 1:  # one bad request must not fail the others: answer each alone
                for job in jobs:
                    self._chat([job])
                return
            jobs[0].future.set_exception(exc)
            return
        start = 0
        for job in jobs:
            rows = len(job.payload.seeds)
            job.future.set_result(results[start : start + rows])
            start += rows

    def _stream(self, job: Job) -> ChatResult:
        payload: StreamPayload = job.payload
        session = self.janus.session(payload.options)
        for piece in session.stream_conversation(payload.conversation, payload.options):
            job.check_cancelled()  # the client has gone: stop decoding
            payload.sink(piece)
        job.check_cancelled()
        result = session.last_result
        if result is None:
            raise RuntimeError("the stream ended without a result")
        return result

    def _images(self, job: Job) -> ImageOutput:
        payload: ImagePayload = job.payload

        def progress(done: int, total: int) -> None:
            job.check_cancelled()

        result = self.janus.generate_images(payload.prompt, payload.options, progress=progress)
        images, method = result.images, None
        if payload.upscale and payload.upscale > 1:
            from januspro.upscale import upscale_images

            job.check_cancelled()
            images, method = upscale_images(images, payload.upscale, weights=payload.upscale_weights,
                                            device=self.janus.device)
        return ImageOutput(result, images, method)
