"""The OpenAI-compatible HTTP API around one loaded model.

    app = create_app(januspro.load(...), ServerSettings(model_id="janus-pro-1b"))
    uvicorn.run(app, host="127.0.0.1", port=8000)

Endpoints: POST /v1/chat/completions, POST /v1/images/generations, GET /v1/models,
GET /v1/models/{id}, GET /health. Every request is validated (and its images decoded) before it
is queued; the model itself runs on the scheduler's single worker thread.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import secrets
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import asdict, replace
from typing import Any, AsyncIterator, Callable, TypeVar

from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect

import januspro
from januspro.device import dtype_name
from januspro.engine import ChatOptions, ChatResult, ImageOptions, Janus
from januspro.errors import InputError
from januspro.server.errors import APIError, bad_request, input_error, install_handlers, queue_full, too_large, validation_error
from januspro.server.inputs import ChatInput, check_model, parse_chat
from januspro.server.scheduler import Cancelled, Job, QueueFull, Scheduler
from januspro.server.schemas import ChatCompletionRequest, ImageGenerationRequest
from januspro.server.settings import ServerSettings
from januspro.server.worker import ChatPayload, ImageOutput, ImagePayload, ModelWorker, StreamPayload

FINGERPRINT = f"januspro-{januspro.__version__}"
OPENAI_DEFAULT_TEMPERATURE = 1.0
Body = TypeVar("Body", bound=BaseModel)


class _ClientGone(Exception):
    pass


def create_app(janus: Janus, settings: ServerSettings = ServerSettings()) -> FastAPI:
    """A FastAPI app serving `janus`. The model worker starts and stops with the app."""
    scheduler = Scheduler(ModelWorker(janus), settings.max_queue, settings.max_batch)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        scheduler.start()
        try:
            yield
        finally:
            await run_in_threadpool(scheduler.stop)

    app = FastAPI(title="januspro", version=januspro.__version__, lifespan=lifespan,
                  description="OpenAI-compatible API for Janus / Janus-Pro: chat about images, generate images.")
    app.state.janus = janus
    app.state.settings = settings
    app.state.scheduler = scheduler
    install_handlers(app)
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST"],
                           allow_headers=["*"])
    api = _API(janus, settings, scheduler)
    auth = [Depends(api.check_auth)]
    for path, handler, method in [
        ("/v1/chat/completions", api.chat_completions, "POST"),
        ("/v1/images/generations", api.image_generations, "POST"),
        ("/v1/models", api.list_models, "GET"),
        ("/v1/models/{model_id:path}", api.get_model, "GET"),
    ]:
        app.add_api_route(path, handler, methods=[method], dependencies=auth, response_model=None)
    app.add_api_route("/health", api.health, methods=["GET"], response_model=None)
    return app


class _API:
    """The route handlers, sharing the model, the settings and the scheduler."""

    def __init__(self, janus: Janus, settings: ServerSettings, scheduler: Scheduler) -> None:
        self.janus = janus
        self.settings = settings
        self.scheduler = scheduler
        self.created = int(time.time())
        size = janus.config.gen_vision.image_size
        self.native_size = size
        self.sizes = {f"{size}x{size}": 1, f"{2 * size}x{2 * size}": 2, f"{4 * size}x{4 * size}": 4}

    # ------------------------------------------------------------------ plumbing

    async def check_auth(self, request: Request) -> None:
        if self.settings.api_key is None:
            return
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else ""
        if not secrets.compare_digest(token.encode(), self.settings.api_key.encode()):
            raise APIError(401, "invalid or missing API key (send 'Authorization: Bearer <key>')",
                           code="invalid_api_key")

    async def read_body(self, request: Request, schema: type[Body]) -> Body:
        """The JSON body as `schema`, within the size limit, or a 4xx APIError."""
        limit = self.settings.max_body_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise too_large(f"the request body is {declared} bytes; the limit is {limit}")
        chunks, size = [], 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise too_large(f"the request body is larger than the limit of {limit} bytes")
                chunks.append(chunk)
        except ClientDisconnect:
            raise _ClientGone() from None
        try:
            data = json.loads(b"".join(chunks))
        except UnicodeDecodeError:
            raise bad_request("the request body is not UTF-8 JSON", code="invalid_json") from None
        except json.JSONDecodeError as exc:
            raise bad_request(f"malformed JSON in the request body: {exc.msg} (line {exc.lineno}, column {exc.colno})",
                              code="invalid_json") from None
        if not isinstance(data, dict):
            raise bad_request("the request body must be a JSON object", code="invalid_json")
        try:
            return schema.model_validate(data)
        except ValidationError as exc:
            raise validation_error(exc) from None

    def submit(self, job: Job) -> Job:
        try:
            return self.scheduler.submit(job)
        except QueueFull:
            raise queue_full(self.settings.max_queue) from None

    async def wait(self, job: Job, request: Request) -> Any:
        """The job's result; cancels the job if the client goes away first."""
        waiter = asyncio.wrap_future(job.future)
        try:
            while True:
                done, _ = await asyncio.wait({waiter}, timeout=self.settings.disconnect_poll_s)
                if done:
                    break
                if await request.is_disconnected():
                    raise _ClientGone()
        finally:
            if not job.future.done():
                self.scheduler.cancel(job)
        if job.future.cancelled():
            raise APIError(503, "the server is shutting down", type="server_error", code="shutting_down")
        error = job.future.exception()
        if isinstance(error, Cancelled):
            raise _ClientGone()
        if isinstance(error, InputError):
            raise input_error(error)
        if error is not None:
            raise error
        return job.future.result()

    async def guarded(self, handler: Callable[[], Any]) -> Any:
        try:
            return await handler()
        except _ClientGone:
            return Response(status_code=499)  # nobody is listening; close quietly

    # ------------------------------------------------------------------ chat

    async def chat_completions(self, request: Request) -> Any:
        return await self.guarded(lambda: self._chat(request))

    def _chat_options(self, body: ChatCompletionRequest, chat: ChatInput) -> tuple[ChatOptions, int]:
        """Sampling options and the prompt length in tokens (runs in a thread: tokenises)."""
        top_p, top_k = body.top_p, body.top_k
        if top_p == 0:  # the smallest nucleus is the most likely token
            top_p, top_k = None, 1
        elif top_p == 1:
            top_p = None
        temperature = OPENAI_DEFAULT_TEMPERATURE if body.temperature is None else body.temperature
        options = ChatOptions(max_new_tokens=body.token_limit or self.settings.default_max_tokens,
                              temperature=temperature, top_p=top_p, top_k=top_k, system=chat.system,
                              verify=body.verify)
        try:
            options.sampling()
            prompt = self.janus.processor.conversation(chat.messages, chat.system)
        except InputError as exc:
            raise input_error(exc, "messages") from None
        context = self.janus.processor.max_length
        if len(prompt.ids) >= context:
            raise bad_request(f"the conversation is {len(prompt.ids)} tokens, which leaves no room to answer in the "
                              f"model's context of {context} tokens", "messages", "context_length_exceeded")
        return options, len(prompt.ids)

    async def _chat(self, request: Request) -> Any:
        body = await self.read_body(request, ChatCompletionRequest)
        check_model(body.model, self.settings)
        if body.n > self.settings.max_chat_n:
            raise bad_request(f"n must be at most {self.settings.max_chat_n}, got {body.n}", "n")
        if body.stream and body.n != 1:
            raise bad_request("n > 1 is not supported with stream: true", "n")
        chat = await run_in_threadpool(parse_chat, body, self.settings)
        options, prompt_len = await run_in_threadpool(self._chat_options, body, chat)
        seed = secrets.randbelow(2**31) if body.seed is None else body.seed
        if body.stream:
            return self._stream(body, chat, replace(options, seed=seed))
        # Batch only requests whose token budget the context does not cut: then every row of
        # a batch gets exactly the budget (and so the answer) it would get alone.
        batchable = prompt_len + options.max_new_tokens <= self.janus.processor.max_length
        job = self.submit(Job("chat", ChatPayload(chat.messages, options, tuple(seed + i for i in range(body.n))),
                              batch_key=("chat", options) if batchable else None, rows=body.n))
        results: list[ChatResult] = await self.wait(job, request)
        completion = sum(len(r.tokens) for r in results)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.settings.model_id,
            "system_fingerprint": FINGERPRINT,
            "choices": [
                {"index": i, "message": {"role": "assistant", "content": r.text, "refusal": None},
                 "logprobs": None, "finish_reason": r.finish_reason}
                for i, r in enumerate(results)
            ],
            "usage": {"prompt_tokens": prompt_len, "completion_tokens": completion, "total_tokens": prompt_len + completion},
        }

    def _stream(self, body: ChatCompletionRequest, chat: ChatInput, options: ChatOptions) -> StreamingResponse:
        """Server-sent events in the `chat.completion.chunk` format, ending with `[DONE]`."""
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[str | None] = asyncio.Queue()

        def push(item: str | None) -> None:  # called on the worker thread
            try:
                loop.call_soon_threadsafe(events.put_nowait, item)
            except RuntimeError:  # the event loop is gone (shutdown)
                pass

        job = self.submit(Job("stream", StreamPayload(chat.messages, options, push)))
        job.future.add_done_callback(lambda _: push(None))
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

        def chunk(delta: dict[str, Any], finish: str | None = None, usage: dict[str, int] | None = None,
                  choices: bool = True) -> str:
            data: dict[str, Any] = {
                "id": completion_id, "object": "chat.completion.chunk", "created": created,
                "model": self.settings.model_id, "system_fingerprint": FINGERPRINT,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}] if choices else [],
            }
            if include_usage:
                data["usage"] = usage
            return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

        async def events_stream() -> AsyncIterator[str]:
            try:
                yield chunk({"role": "assistant", "content": "", "refusal": None})
                while (piece := await events.get()) is not None:
                    yield chunk({"content": piece})
                error = None if job.future.cancelled() else job.future.exception()
                if job.future.cancelled() or error is not None:
                    api_error = _stream_error(error)
                    yield f"data: {json.dumps(api_error.body())}\n\n"
                    return
                result: ChatResult = job.future.result()
                yield chunk({}, result.finish_reason)
                if include_usage:
                    prompt, completion = result.prompt_tokens, len(result.tokens)
                    yield chunk({}, usage={"prompt_tokens": prompt, "completion_tokens": completion,
                                           "total_tokens": prompt + completion}, choices=False)
                yield "data: [DONE]\n\n"
            finally:
                if not job.future.done():  # the client went away: leave the queue / stop decoding
                    self.scheduler.cancel(job)

        return StreamingResponse(events_stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    # ------------------------------------------------------------------ images

    async def image_generations(self, request: Request) -> Any:
        return await self.guarded(lambda: self._images(request))

    def _image_size(self, body: ImageGenerationRequest) -> int:
        """The upscale factor (1 = native) that `size` and `upscale` ask for."""
        upscale = body.upscale or 1
        allowed = ", ".join(f"{size}" + (f" (upscale {f})" if f > 1 else "") for size, f in self.sizes.items())
        if body.size in (None, "auto"):
            return upscale
        factor = self.sizes.get(body.size.strip().lower())
        if factor is None:
            native = f"{self.native_size}x{self.native_size}"
            raise bad_request(f"size {body.size!r} is not supported: this model draws {native} images "
                              f"(allowed sizes: {allowed})", "size", "invalid_size")
        if body.upscale is not None and factor != upscale:
            raise bad_request(f"size {body.size} does not match upscale {upscale}; with upscale {upscale} the size is "
                              f"{self.native_size * upscale}x{self.native_size * upscale}", "size", "invalid_size")
        return factor

    async def _images(self, request: Request) -> Any:
        body = await self.read_body(request, ImageGenerationRequest)
        check_model(body.model, self.settings)
        settings = self.settings
        if not body.prompt.strip():
            raise bad_request("the prompt is empty", "prompt", "missing_required_parameter")
        if len(body.prompt) > settings.max_prompt_chars:
            raise bad_request(f"the prompt has {len(body.prompt)} characters (the limit is {settings.max_prompt_chars})",
                              "prompt")
        if body.n > settings.max_images:
            raise bad_request(f"n must be between 1 and {settings.max_images}, got {body.n}", "n")
        if body.candidates is not None and body.n * body.candidates > settings.max_images:
            raise bad_request(f"n x candidates must be at most {settings.max_images}, got {body.n} x {body.candidates}",
                              "candidates")
        factor = self._image_size(body)
        seed = secrets.randbelow(2**31) if body.seed is None else body.seed
        options = ImageOptions(
            n=body.n, cfg_weight=body.guidance_scale,  # None: the model's default
            temperature=body.temperature, top_k=body.top_k, top_p=body.top_p,  # None: the model's default
            seed=seed, max_images=settings.max_images, candidates=body.candidates,
        )
        try:
            options.sampling()
            ids = self.janus.processor.generation_prompt(body.prompt)
            self.janus.processor.check_length(len(ids), reserve=self.janus.config.num_gen_tokens)
        except InputError as exc:
            raise input_error(exc, "prompt") from None
        job = self.submit(Job("image", ImagePayload(body.prompt, options, factor if factor > 1 else None,
                                                    settings.upscale_weights)))
        output: ImageOutput = await self.wait(job, request)
        fmt = body.output_format or "png"
        encoded = await run_in_threadpool(_encode_images, output.images, fmt, body.output_compression)
        side = self.native_size * factor
        prompt_tokens, output_tokens = (output.result.prompt_tokens,
                                        body.n * self.janus.candidates(options) * self.janus.config.num_gen_tokens)
        return {
            "created": int(time.time()),
            "data": [{"b64_json": data, "revised_prompt": None} for data in encoded],
            "size": f"{side}x{side}",
            "output_format": fmt,
            "background": "opaque",
            "usage": {"input_tokens": prompt_tokens, "output_tokens": output_tokens,
                      "total_tokens": prompt_tokens + output_tokens,
                      "input_tokens_details": {"text_tokens": prompt_tokens, "image_tokens": 0}},
            "seed": seed,
            "upscale": {"factor": factor, "method": output.upscale_method} if factor > 1 else None,
        }

    # ------------------------------------------------------------------ models and health

    def _model_card(self) -> dict[str, Any]:
        return {"id": self.settings.model_id, "object": "model", "created": self.created, "owned_by": "januspro"}

    async def list_models(self) -> dict[str, Any]:
        return {"object": "list", "data": [self._model_card()]}

    async def get_model(self, model_id: str) -> dict[str, Any]:
        check_model(model_id, self.settings)
        return self._model_card()

    async def health(self) -> JSONResponse:
        stats = self.scheduler.stats()
        return JSONResponse({
            "status": "ok",
            "model": self.settings.model_id,
            "device": str(self.janus.device),
            "dtype": dtype_name(self.janus.dtype),
            "image_size": self.native_size,
            "context_length": self.janus.processor.max_length,
            "queue": {**asdict(stats), "limit": self.settings.max_queue},
        })


def _stream_error(error: BaseException | None) -> APIError:
    if error is None:
        return APIError(503, "the server is shutting down", type="server_error", code="shutting_down")
    if isinstance(error, InputError):
        return input_error(error)
    return APIError(500, "internal server error (see the server log)", type="server_error", code="internal_error")


def _encode_images(images: list[Any], fmt: str, quality: int | None) -> list[str]:
    out = []
    for image in images:
        buffer = io.BytesIO()
        if fmt == "png":
            image.save(buffer, format="PNG")
        else:
            image.convert("RGB").save(buffer, format=fmt.upper(), quality=90 if quality is None else quality)
        out.append(base64.b64encode(buffer.getvalue()).decode("ascii"))
    return out
