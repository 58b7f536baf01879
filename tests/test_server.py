"""The OpenAI-compatible server: a real uvicorn server on loopback around the tiny random model,
driven by the official `openai` client (and httpx for what that client cannot send)."""

from __future__ import annotations

import base64
import concurrent.futures
import io
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
openai = pytest.importorskip("openai")
httpx = pytest.importorskip("httpx")
uvicorn = pytest.importorskip("uvicorn")

import januspro  # noqa: E402
from januspro import ChatOptions, ImageOptions, Message  # noqa: E402
from januspro.server.app import create_app  # noqa: E402
from januspro.server.scheduler import Job, QueueFull, Scheduler  # noqa: E402
from januspro.server.settings import ServerSettings  # noqa: E402

API_KEY = "x"
SETTINGS = ServerSettings(
    model_id="tiny", api_key=API_KEY, max_image_bytes=200_000, max_image_pixels=250_000,
    max_body_bytes=1_000_000, max_images=4, max_images_per_request=3, max_messages=10,
)


# ------------------------------------------------------------------------------ helpers


class LiveServer:
    """uvicorn serving `app` on a free loopback port, in a background thread."""

    def __init__(self, app: Any) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "LiveServer":
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)

    def client(self) -> "openai.OpenAI":
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=API_KEY, max_retries=0, timeout=60)

    def post(self, path: str, body: Any = None, *, content: bytes | str | None = None, key: str | None = API_KEY,
             timeout: float = 60) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        if content is None:
            return httpx.post(self.url + path, json=body, headers=headers, timeout=timeout)
        return httpx.post(self.url + path, content=content, headers={**headers, "Content-Type": "application/json"},
                          timeout=timeout)

    def health(self) -> dict[str, Any]:
        return httpx.get(self.url + "/health", timeout=10).json()


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def user(text: str, *images: str) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [{"type": "image_url", "image_url": {"url": url}} for url in images]
    return {"role": "user", "content": parts + [{"type": "text", "text": text}]}


def decode_png(b64: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))))


@pytest.fixture(scope="module")
def janus(tiny_checkpoint: Path) -> januspro.Janus:
    return januspro.load(tiny_checkpoint, device="cpu")


@pytest.fixture(scope="module")
def server(janus: januspro.Janus) -> Iterator[LiveServer]:
    with LiveServer(create_app(janus, SETTINGS)) as live:
        yield live


@pytest.fixture(scope="module")
def picture() -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (24, 40, 3), dtype=np.uint8))


# ------------------------------------------------------------------------------ the happy paths


def test_models_and_health(server: LiveServer) -> None:
    client = server.client()
    assert [m.id for m in client.models.list().data] == ["tiny"]
    assert client.models.retrieve("tiny").id == "tiny"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o")
    health = server.health()
    assert health["status"] == "ok" and health["model"] == "tiny" and health["image_size"] == 32


def test_chat_with_an_image_equals_the_engine(server: LiveServer, janus: januspro.Janus, picture: Image.Image) -> None:
    url = data_url(png_bytes(picture))
    response = server.client().chat.completions.create(
        model="tiny", messages=[user("What is in the image?", url)], temperature=0.8, top_p=0.9,
        max_tokens=12, seed=5, n=2,
    )
    options = ChatOptions(max_new_tokens=12, temperature=0.8, top_p=0.9)
    expected = janus.chat_batch([[Message("user", "What is in the image?", (picture,))]] * 2, options, seeds=[5, 6])
    assert [c.message.content for c in response.choices] == [r.text for r in expected]
    assert [c.finish_reason for c in response.choices] == [r.finish_reason for r in expected]
    assert response.usage.prompt_tokens == expected[0].prompt_tokens
    assert response.usage.completion_tokens == sum(len(r.tokens) for r in expected)
    assert response.model == "tiny" and response.object == "chat.completion"
    # The extension `verify` (check answers where the model's caption grammar can; the tiny model has none).
    unchecked = server.client().chat.completions.create(
        model="tiny", messages=[user("What is in the image?", url)], temperature=0.8, top_p=0.9,
        max_tokens=12, seed=5, n=2, extra_body={"verify": False})
    assert [c.message.content for c in unchecked.choices] == [r.text for r in expected]


def test_the_verify_extension_reaches_the_engine(server: LiveServer, janus: januspro.Janus, picture: Image.Image,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """`verify` arrives as `ChatOptions.verify` where the engine decides whether to check an answer (None when the
    request leaves it out: the model's default), streamed or not."""
    seen: list[bool | None] = []
    decide = janus.answer_check
    monkeypatch.setattr(janus, "answer_check", lambda conversation, options: seen.append(options.verify) or
                        decide(conversation, options))
    url = data_url(png_bytes(picture))
    for body, stream in (({"verify": True}, False), ({"verify": False}, True), ({}, False)):
        created = server.client().chat.completions.create(
            model="tiny", messages=[user("Describe the image.", url)], max_tokens=4, seed=3, stream=stream,
            extra_body=body)
        if stream:
            list(created)
    assert seen == [True, False, None]


def test_conversation_with_system_prompt_equals_the_engine(server: LiveServer, janus: januspro.Janus,
                                                           picture: Image.Image) -> None:
    messages = [
        {"role": "system", "content": "Answer briefly."},
        user("Describe the image.", data_url(png_bytes(picture))),
        {"role": "assistant", "content": "A square."},
        {"role": "user", "content": "What color?"},
    ]
    response = server.client().chat.completions.create(model="tiny", messages=messages, temperature=0, max_tokens=10)
    expected = janus.chat(
        [Message("user", "Describe the image.", (picture,)), Message("assistant", "A square."),
         Message("user", "What color?")],
        options=ChatOptions(max_new_tokens=10, temperature=0, system="Answer briefly."),
    )
    assert response.choices[0].message.content == expected.text
    assert response.usage.prompt_tokens == expected.prompt_tokens


def test_streaming_gives_the_same_answer(server: LiveServer, picture: Image.Image) -> None:
    client = server.client()
    request = dict(model="tiny", messages=[user("What is this?", data_url(png_bytes(picture)))],
                   temperature=0.7, max_tokens=16, seed=11)
    whole = client.chat.completions.create(**request)
    chunks = list(client.chat.completions.create(**request, stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content  # the deltas join to the answer exactly
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == [whole.choices[0].finish_reason]
    assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == whole.usage.prompt_tokens
    assert chunks[-1].usage.completion_tokens >= 1
    # Without stream_options, no usage chunk; the raw stream ends with [DONE].
    with httpx.stream("POST", f"{server.url}/v1/chat/completions", json={**request, "stream": True},
                      headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30) as raw:
        assert raw.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in raw.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    assert all(json.loads(line[6:])["object"] == "chat.completion.chunk" for line in lines[:-1])


def test_image_generation_equals_the_engine(server: LiveServer, janus: januspro.Janus) -> None:
    response = server.client().images.generate(
        model="tiny", prompt="a red circle", n=2, size="32x32", response_format="b64_json",
        extra_body={"seed": 3, "guidance_scale": 4.0, "temperature": 0.9},
    )
    expected = janus.generate_images("a red circle", ImageOptions(n=2, cfg_weight=4.0, temperature=0.9, seed=3))
    got = [decode_png(d.b64_json) for d in response.data]
    assert len(got) == 2
    for array, image in zip(got, expected.images):
        assert array.shape == (32, 32, 3)
        assert np.array_equal(array, np.asarray(image))
    assert response.usage.output_tokens == 2 * janus.config.num_gen_tokens
    # Ranked: each image the model's pick of 2 samples, as the engine ranks them; all 4 samples count as output.
    body = server.post("/v1/images/generations", {"prompt": "a red circle", "n": 2, "seed": 3, "candidates": 2}).json()
    ranked = janus.generate_images("a red circle", ImageOptions(n=2, seed=3, candidates=2)).images
    assert all(np.array_equal(decode_png(d["b64_json"]), np.asarray(b)) for d, b in zip(body["data"], ranked))
    assert body["usage"]["output_tokens"] == 4 * janus.config.num_gen_tokens


# (request field, processor attribute, ImageOptions field, a checkpoint's default, the official default)
@pytest.mark.parametrize(("field", "attribute", "option", "default", "official"),
                         [("guidance_scale", "cfg_weight", "cfg_weight", 2.5, 5.0),
                          ("temperature", "image_temperature", "temperature", 0.4, 1.0),
                          ("candidates", "candidates", "candidates", 2, 1)])
def test_image_generation_without_a_setting_uses_the_models_default(server: LiveServer, janus: januspro.Janus, field: str,
                                                                    attribute: str, option: str, default: float,
                                                                    official: float) -> None:
    """A request that leaves out `guidance_scale`, `temperature` or `candidates` gets the checkpoint's default (its
    processor_config.json's `cfg_weight` / `image_temperature` / `candidates`); one that gives it gets what it
    asks for."""
    setattr(janus.processor, attribute, default)  # as if the checkpoint's processor_config.json said so
    try:
        body = server.post("/v1/images/generations", {"prompt": "a red circle", "n": 2, "seed": 5}).json()
        got = [decode_png(d["b64_json"]) for d in body["data"]]
        expected = janus.generate_images("a red circle", ImageOptions(n=2, seed=5, **{option: default})).images
        assert all(np.array_equal(a, np.asarray(b)) for a, b in zip(got, expected))
        if field == "candidates":  # every sample drawn counts as output
            assert body["usage"]["output_tokens"] == 2 * default * janus.config.num_gen_tokens
        other = janus.generate_images("a red circle", ImageOptions(n=2, seed=5, **{option: official})).images
        assert not all(np.array_equal(a, np.asarray(b)) for a, b in zip(got, other))
        explicit = server.post("/v1/images/generations",
                               {"prompt": "a red circle", "n": 2, "seed": 5, field: official}).json()
        assert all(np.array_equal(decode_png(d["b64_json"]), np.asarray(b)) for d, b in zip(explicit["data"], other))
    finally:
        setattr(janus.processor, attribute, official)


def test_image_upscale_and_formats(server: LiveServer) -> None:
    client = server.client()
    response = client.images.generate(prompt="a blue square", response_format="b64_json", extra_body={"upscale": 2, "seed": 1})
    assert decode_png(response.data[0].b64_json).shape == (64, 64, 3)
    raw = response.model_dump()
    assert raw["size"] == "64x64" and raw["upscale"]["method"].startswith("Lanczos resampling")
    by_size = server.post("/v1/images/generations", {"prompt": "a blue square", "size": "128x128", "seed": 1,
                                                     "output_format": "jpeg"}).json()
    image = Image.open(io.BytesIO(base64.b64decode(by_size["data"][0]["b64_json"])))
    assert image.format == "JPEG" and image.size == (128, 128) and by_size["upscale"]["factor"] == 4


# ------------------------------------------------------------------------------ bad requests

NOISE = Image.fromarray(np.random.default_rng(1).integers(0, 255, (300, 300, 3), dtype=np.uint8))


def _bad_cases() -> list[tuple[str, str, Any, int, str]]:
    chat, images = "/v1/chat/completions", "/v1/images/generations"
    ok_image = data_url(png_bytes(Image.new("RGB", (8, 8), "red")))
    long_text = "red circle blue square green triangle " * 200
    return [
        ("malformed json", chat, b'{"messages": [', 400, "invalid_json"),
        ("body not an object", chat, b"[1, 2]", 400, "invalid_json"),
        ("unknown field", chat, {"messages": [user("hi")], "temprature": 1}, 400, "unknown_parameter"),
        ("missing messages", chat, {"model": "tiny"}, 400, "missing_required_parameter"),
        ("empty messages", chat, {"messages": []}, 400, "invalid_value"),
        ("bad base64", chat, {"messages": [user("hi", "data:image/png;base64,@@not base64@@")]}, 400, "invalid_base64"),
        ("not an image", chat, {"messages": [user("hi", data_url(b"just some text, not pixels"))]}, 400,
         "invalid_image_format"),
        ("not an image type", chat, {"messages": [user("hi", data_url(b"abc", "text/plain"))]}, 400,
         "invalid_image_format"),
        ("image too many bytes", chat, {"messages": [user("hi", data_url(png_bytes(NOISE)))]}, 413, "too_large"),
        ("image too many pixels", chat, {"messages": [user("hi", data_url(png_bytes(Image.new("RGB", (600, 500)))))]},
         400, "image_too_large"),
        ("remote url refused", chat, {"messages": [user("hi", "https://example.com/cat.png")]}, 400,
         "remote_images_disabled"),
        ("file url", chat, {"messages": [user("hi", "file:///etc/passwd")]}, 400, "invalid_image_url"),
        ("too many images", chat, {"messages": [user("hi", *[ok_image] * 4)]}, 400, "invalid_value"),
        ("too many messages", chat, {"messages": [user("hi")] * 11}, 400, "invalid_value"),
        ("over-long prompt", chat, {"messages": [user(long_text)]}, 400, "context_length_exceeded"),
        ("message too long", chat, {"messages": [user("x" * 40_000)]}, 400, "invalid_value"),
        ("reserved tokens", chat, {"messages": [user("look: <image_placeholder>")]}, 400, "invalid_value"),
        ("tool role", chat, {"messages": [{"role": "tool", "content": "x"}, user("hi")]}, 400, "invalid_value"),
        ("ends with assistant", chat, {"messages": [user("hi"), {"role": "assistant", "content": "yo"}]}, 400,
         "invalid_value"),
        ("image in assistant turn", chat, {"messages": [{"role": "assistant", "content": [
            {"type": "image_url", "image_url": {"url": ok_image}}]}, user("hi")]}, 400, "invalid_value"),
        ("audio part", chat, {"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]},
         400, "invalid_value"),
        ("temperature range", chat, {"messages": [user("hi")], "temperature": 5}, 400, "invalid_value"),
        ("verify not a bool", chat, {"messages": [user("hi")], "verify": "maybe"}, 400, "invalid_value"),
        ("stop unsupported", chat, {"messages": [user("hi")], "stop": ["\n"]}, 400, "unsupported_parameter"),
        ("tools unsupported", chat, {"messages": [user("hi")], "tools": [{"type": "function"}]}, 400,
         "unsupported_parameter"),
        ("chat n too large", chat, {"messages": [user("hi")], "n": 50}, 400, "invalid_value"),
        ("stream with n", chat, {"messages": [user("hi")], "n": 2, "stream": True}, 400, "invalid_value"),
        ("unknown model", chat, {"model": "gpt-4o", "messages": [user("hi")]}, 404, "model_not_found"),
        ("body too large", chat, {"messages": [user("hi", "data:image/png;base64," + "A" * 1_100_000)]}, 413,
         "too_large"),
        ("too many images to draw", images, {"prompt": "a red circle", "n": 5}, 400, "invalid_value"),
        ("zero images", images, {"prompt": "a red circle", "n": 0}, 400, "invalid_value"),
        ("too many candidates", images, {"prompt": "a red circle", "n": 2, "candidates": 3}, 400, "invalid_value"),
        ("zero candidates", images, {"prompt": "a red circle", "candidates": 0}, 400, "invalid_value"),
        ("bad size", images, {"prompt": "a red circle", "size": "1024x1024"}, 400, "invalid_size"),
        ("size vs upscale", images, {"prompt": "a red circle", "size": "32x32", "upscale": 2}, 400, "invalid_size"),
        ("url format", images, {"prompt": "a red circle", "response_format": "url"}, 400, "unsupported_parameter"),
        ("empty prompt", images, {"prompt": "   "}, 400, "missing_required_parameter"),
        ("over-long image prompt", images, {"prompt": long_text[:3900]}, 400, "context_length_exceeded"),
        ("image unknown field", images, {"prompt": "a red circle", "cfg": 3}, 400, "unknown_parameter"),
        ("nan guidance", images, b'{"prompt": "a red circle", "guidance_scale": NaN}', 400, "invalid_value"),
    ]


@pytest.mark.parametrize("name, path, body, status, code", _bad_cases(), ids=[c[0] for c in _bad_cases()])
def test_bad_requests_get_openai_errors(server: LiveServer, name: str, path: str, body: Any, status: int, code: str) -> None:
    response = server.post(path, content=body) if isinstance(body, bytes) else server.post(path, body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code and error["message"]
    assert "Traceback" not in response.text


def test_error_messages_name_the_problem(server: LiveServer) -> None:
    bad_size = server.post("/v1/images/generations", {"prompt": "x", "size": "512x512"}).json()["error"]
    assert "32x32" in bad_size["message"] and bad_size["param"] == "size"
    with pytest.raises(openai.BadRequestError, match="32x32"):
        server.client().images.generate(prompt="a red circle", size="1024x1024", response_format="b64_json")
    unknown = server.post("/v1/chat/completions", {"messages": [user("hi")], "temprature": 1}).json()["error"]
    assert unknown["param"] == "temprature"
    pixels = server.post("/v1/chat/completions",
                         {"messages": [user("hi", data_url(png_bytes(Image.new("RGB", (600, 500)))))]}).json()["error"]
    assert pixels["param"] == "messages[0].content[0].image_url.url" and "600x500" in pixels["message"]


def test_auth_routes_and_methods(server: LiveServer) -> None:
    assert server.post("/v1/chat/completions", {"messages": [user("hi")]}, key=None).status_code == 401
    wrong = server.post("/v1/chat/completions", {"messages": [user("hi")]}, key="wrong")
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"
    missing = httpx.get(f"{server.url}/v1/nothing", timeout=10)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    method = httpx.get(f"{server.url}/v1/chat/completions", headers={"Authorization": "Bearer x"}, timeout=10)
    assert method.status_code == 405 and "error" in method.json()


# ------------------------------------------------------------------------------ queueing


@pytest.fixture()
def blocked(janus: januspro.Janus, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[LiveServer, threading.Event]]:
    """A server with a queue of one whose image generations wait until the event is set."""
    release = threading.Event()
    generate = janus.generate_images

    def slow_generate(*args: Any, **kwargs: Any) -> Any:
        release.wait(30)
        return generate(*args, **kwargs)

    monkeypatch.setattr(janus, "generate_images", slow_generate)
    settings = ServerSettings(model_id="tiny", max_queue=1, disconnect_poll_s=0.05)
    with LiveServer(create_app(janus, settings)) as live:
        try:
            yield live, release
        finally:
            release.set()


def test_full_queue_answers_503_and_disconnects_free_their_place(blocked: tuple[LiveServer, threading.Event]) -> None:
    live, release = blocked
    pool = concurrent.futures.ThreadPoolExecutor(4)
    running = pool.submit(live.post, "/v1/images/generations", {"prompt": "a red circle", "seed": 1})
    wait_until(lambda: live.health()["queue"]["running"] == 1)
    # A client that gives up while waiting: its place frees and its work never runs.
    with pytest.raises(httpx.ReadTimeout):
        live.post("/v1/chat/completions", {"messages": [user("hi")], "max_tokens": 4}, timeout=0.5)
    wait_until(lambda: live.health()["queue"]["waiting"] == 0)
    assert live.health()["queue"]["cancelled"] == 1
    # A streaming client that leaves while queued frees its place too.
    with httpx.stream("POST", f"{live.url}/v1/chat/completions", timeout=10,
                      json={"messages": [user("hi")], "max_tokens": 4, "stream": True}) as stream:
        lines = stream.iter_lines()  # keep a reference: a collected iterator closes the response
        first = next(lines)
        assert first.startswith("data: ") and live.health()["queue"]["waiting"] == 1
    wait_until(lambda: live.health()["queue"]["waiting"] == 0)
    assert live.health()["queue"]["cancelled"] == 2
    # Fill the one place; the next request is refused at once.
    queued = pool.submit(live.post, "/v1/chat/completions", {"messages": [user("hi")], "max_tokens": 4, "seed": 2})
    wait_until(lambda: live.health()["queue"]["waiting"] == 1)
    refused = live.post("/v1/chat/completions", {"messages": [user("hi")], "max_tokens": 4})
    assert refused.status_code == 503 and refused.headers.get("retry-after") == "1"
    assert refused.json()["error"]["code"] == "queue_full"
    release.set()
    assert running.result(30).status_code == 200 and queued.result(30).status_code == 200
    stats = live.health()["queue"]
    assert stats["completed"] == 2 and stats["rejected"] == 1 and stats["failed"] == 0
    pool.shutdown()


def test_a_stream_stops_decoding_when_its_client_leaves(janus: januspro.Janus, monkeypatch: pytest.MonkeyPatch) -> None:
    import januspro.engine as engine

    decode = engine.decode_tokens
    steps = []

    def slow_decode(*args: Any, **kwargs: Any) -> Iterator[Any]:
        for step in decode(*args, **kwargs):
            steps.append(1)
            time.sleep(0.02)
            yield step

    monkeypatch.setattr(engine, "decode_tokens", slow_decode)
    with LiveServer(create_app(janus, ServerSettings(model_id="tiny"))) as live:
        body = {"messages": [user("Describe everything.")], "max_tokens": 300, "temperature": 0, "stream": True}
        with httpx.stream("POST", f"{live.url}/v1/chat/completions", json=body, timeout=30) as stream:
            contents = []
            for line in stream.iter_lines():
                if '"content": "' in line and '"role"' not in line:
                    contents.append(line)
                if len(contents) == 3:
                    break
        assert len(contents) == 3
        wait_until(lambda: live.health()["queue"]["cancelled"] == 1, timeout=5)
        assert live.health()["queue"]["running"] == 0
        assert len(steps) < 100  # stopped long before the 300-token budget


# ------------------------------------------------------------------------------ load


def test_load_50_requests_from_8_clients(server: LiveServer, janus: januspro.Janus, picture: Image.Image) -> None:
    url = data_url(png_bytes(picture))
    before = server.health()["queue"]

    def request(index: int) -> tuple[str, Any]:
        client = server.client()
        if index % 10 == 9:
            response = client.images.generate(prompt="a green triangle", response_format="b64_json",
                                              extra_body={"seed": index})
            return "image", decode_png(response.data[0].b64_json)
        messages = [user(f"question {index}", url)] if index % 2 else [user(f"question {index}")]
        common = dict(model="tiny", messages=messages, temperature=0.9, max_tokens=6 + index % 2, seed=index)
        if index % 10 == 4:
            stream = client.chat.completions.create(**common, stream=True)
            return "chat", "".join(c.choices[0].delta.content or "" for c in stream if c.choices).strip()
        return "chat", client.chat.completions.create(**common).choices[0].message.content

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(request, range(50)))
    assert len(results) == 50
    for index, (kind, got) in enumerate(results):
        if kind == "image":
            expected = janus.generate_images("a green triangle", ImageOptions(seed=index)).images[0]
            assert np.array_equal(got, np.asarray(expected)), index
        else:
            images = (picture,) if index % 2 else ()
            options = ChatOptions(max_new_tokens=6 + index % 2, temperature=0.9, seed=index)
            assert got == janus.chat([Message("user", f"question {index}", images)], options=options).text, index
    after = server.health()["queue"]
    assert after["completed"] - before["completed"] == 50
    assert after["failed"] == before["failed"] and after["rejected"] == before["rejected"]
    assert after["largest_batch"] > 1  # concurrent chats did share batches


# ------------------------------------------------------------------------------ scheduler policy


def test_scheduler_batches_compatible_jobs_in_order() -> None:
    ran: list[list[str]] = []
    gate = threading.Event()

    def execute(jobs: list[Job]) -> None:
        gate.wait(10)
        ran.append([job.payload for job in jobs])
        for job in jobs:
            job.future.set_result(job.payload)

    scheduler = Scheduler(execute, max_waiting=10, max_batch_rows=3)
    scheduler.start()
    first = scheduler.submit(Job("image", "img"))
    wait_until(lambda: scheduler.stats().running == 1)
    jobs = [scheduler.submit(Job("chat", name, batch_key=key, rows=rows))
            for name, key, rows in [("a", "k1", 1), ("b", "k2", 1), ("c", "k1", 2), ("d", "k1", 1), ("e", None, 1)]]
    assert scheduler.cancel(jobs[1])  # b leaves the queue and never runs
    gate.set()
    for job in [first, *jobs[2:]]:
        job.future.result(10)
    scheduler.stop()
    assert ran == [["img"], ["a", "c"], ["d"], ["e"]]  # rows capped at 3; b cancelled
    assert jobs[1].future.cancelled()
    assert scheduler.stats().cancelled == 1 and scheduler.stats().largest_batch == 3


def test_scheduler_refuses_beyond_the_limit() -> None:
    scheduler = Scheduler(lambda jobs: None, max_waiting=2)  # not started: nothing leaves the queue
    scheduler.submit(Job("chat", 1))
    scheduler.submit(Job("chat", 2))
    with pytest.raises(QueueFull):
        scheduler.submit(Job("chat", 3))
    assert scheduler.stats().rejected == 1


def test_adapters_stay_separate() -> None:
    code = (
        "import sys, januspro.server.cli, januspro.webapp.cli;"
        "heavy = [m for m in ('torch', 'fastapi', 'uvicorn', 'gradio') if m in sys.modules];"
        "import januspro.server.app;"
        "wrong = [m for m in ('januspro.cli', 'januspro.webapp.app', 'gradio') if m in sys.modules];"
        "print(heavy, wrong)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[] []"
