"""OpenAI chat messages -> januspro `Message`s, with every image decoded and checked.

Content is a string or a list of parts: `{"type": "text", "text": ...}` and
`{"type": "image_url", "image_url": {"url": ...}}`. Image URLs are `data:` URLs with base64
PNG, JPEG, WebP or GIF data; http(s) URLs are fetched only when the server allows it. Parts keep
their order: an image between two texts sits between them in the prompt.

This runs in a worker thread (decoding and fetching block), before a request is queued, so a
bad request is answered at once and never takes a slot in the model's queue.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from PIL import Image, UnidentifiedImageError

from januspro.errors import InputError
from januspro.processing.chat_format import Message
from januspro.processing.image import load_image
from januspro.processing.tokenizer import BOI, EOI, IMAGE
from januspro.server.errors import APIError, bad_request, too_large
from januspro.server.schemas import ChatCompletionRequest
from januspro.server.settings import ServerSettings

IMAGE_FORMATS = {"PNG", "JPEG", "WEBP", "GIF"}
RESERVED_TEXT = (IMAGE, BOI, EOI)
_DATA_URL = re.compile(r"^data:(?P<mime>[^;,]*)(?P<params>(?:;[^;,]*)*),(?P<data>.*)$", re.DOTALL)
_WHITESPACE = re.compile(rb"\s+")


@dataclass(frozen=True)
class ChatInput:
    messages: list[Message]
    system: str | None  # None: the model's default system prompt
    num_images: int


def parse_chat(request: ChatCompletionRequest, settings: ServerSettings) -> ChatInput:
    """The conversation of a chat request, or an APIError naming the field at fault."""
    if len(request.messages) > settings.max_messages:
        raise bad_request(f"too many messages: {len(request.messages)} (the limit is {settings.max_messages})", "messages")
    messages: list[Message] = []
    system_parts: list[str] = []
    num_images = 0
    for index, message in enumerate(request.messages):
        param = f"messages[{index}]"
        role = message.role
        if role in ("system", "developer"):
            text, images = _content(message.content, f"{param}.content", settings, allow_images=False)
            system_parts.append(text)
        elif role in ("user", "assistant"):
            text, images = _content(message.content, f"{param}.content", settings, allow_images=role == "user",
                                    budget=settings.max_images_per_request - num_images)
            num_images += len(images)
            messages.append(Message(role, text, tuple(images)))
        else:
            raise bad_request(f"{param}.role: {role!r} is not supported (use system, user or assistant)",
                              f"{param}.role")
    if not messages or messages[-1].role != "user":
        raise bad_request("the last message (other than system messages) must be from the user", "messages")
    system = "\n\n".join(system_parts) if system_parts else None
    return ChatInput(messages, system, num_images)


def _content(
    content: str | list[dict[str, Any]] | None,
    param: str,
    settings: ServerSettings,
    allow_images: bool,
    budget: int = 0,
) -> tuple[str, list[Image.Image]]:
    """(text with one image placeholder per image, images) of a message's content."""
    if content is None:
        raise bad_request(f"{param} is missing", param, "missing_required_parameter")
    if isinstance(content, str):
        return _text(content, param, settings), []
    pieces: list[str] = []
    images: list[Image.Image] = []
    for index, part in enumerate(content):
        part_param = f"{param}[{index}]"
        kind = part.get("type")
        if kind in ("text", "input_text"):
            text = part.get("text")
            if not isinstance(text, str) or set(part) - {"type", "text"}:
                raise bad_request(f"{part_param}: a text part is {{'type': 'text', 'text': str}}", part_param)
            pieces.append(_text(text, part_param, settings))
        elif kind == "image_url":
            if not allow_images:
                raise bad_request(f"{part_param}: images are only allowed in user messages", part_param)
            if len(images) >= budget:
                raise bad_request(f"too many images: the limit is {settings.max_images_per_request} per request",
                                  part_param)
            images.append(decode_image_url(_image_url(part, part_param), f"{part_param}.image_url.url", settings))
            pieces.append(IMAGE)
        else:
            raise bad_request(f"{part_param}: content parts of type {kind!r} are not supported "
                              f"(use 'text' or 'image_url')", f"{part_param}.type")
    text = "\n".join(pieces)
    if len(text) > settings.max_message_chars:
        raise bad_request(f"{param}: the message has {len(text)} characters (the limit is {settings.max_message_chars})",
                          param)
    return text, images


def _text(text: str, param: str, settings: ServerSettings) -> str:
    if len(text) > settings.max_message_chars:
        raise bad_request(f"{param}: the message has {len(text)} characters (the limit is {settings.max_message_chars})",
                          param)
    for reserved in RESERVED_TEXT:
        if reserved in text:
            raise bad_request(f"{param}: text may not contain {reserved!r}; send images as image_url parts", param)
    return text


def _image_url(part: dict[str, Any], param: str) -> str:
    value = part.get("image_url")
    if isinstance(value, dict) and isinstance(value.get("url"), str) and set(value) <= {"url", "detail"}:
        return value["url"]
    if isinstance(value, str):  # some clients send the URL itself
        return value
    raise bad_request(f"{param}: an image part is {{'type': 'image_url', 'image_url': {{'url': str}}}}",
                      f"{param}.image_url")


# ------------------------------------------------------------------------------ images


def decode_image_url(url: str, param: str, settings: ServerSettings) -> Image.Image:
    """An RGB image from a data: URL (or an http(s) URL when allowed)."""
    if url.startswith("data:"):
        return decode_image_bytes(_data_url_bytes(url, param, settings), param, settings)
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme in ("http", "https"):
        if not settings.allow_remote_images:
            raise bad_request("remote image URLs are disabled on this server (start it with --allow-remote-images); "
                              "send the image as a data: URL with base64 data", param, "remote_images_disabled")
        return decode_image_bytes(_fetch(url, param, settings), param, settings)
    raise bad_request("an image URL must be a data: URL with base64 image data"
                      + (" (or http/https)" if settings.allow_remote_images else ""), param, "invalid_image_url")


def _data_url_bytes(url: str, param: str, settings: ServerSettings) -> bytes:
    match = _DATA_URL.match(url)
    if not match:
        raise bad_request("malformed data URL (expected data:image/png;base64,...)", param, "invalid_image_url")
    mime = match.group("mime").strip().lower()
    if mime and not mime.startswith("image/"):
        raise bad_request(f"the data URL holds {mime!r}, not an image", param, "invalid_image_format")
    if "base64" not in [p.strip().lower() for p in match.group("params").split(";")]:
        raise bad_request("the image data URL must be base64-encoded (data:image/png;base64,...)", param,
                          "invalid_image_url")
    text = _WHITESPACE.sub(b"", match.group("data").encode("ascii", "replace"))
    if len(text) // 4 * 3 > settings.max_image_bytes + 3:
        raise too_large(f"the image is larger than {settings.max_image_bytes} bytes", param)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise bad_request("the image data is not valid base64", param, "invalid_base64") from None


def _fetch(url: str, param: str, settings: ServerSettings) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": "januspro-server"})
    try:
        with urllib.request.urlopen(request, timeout=settings.remote_image_timeout_s) as response:  # noqa: S310
            data = response.read(settings.max_image_bytes + 1)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise bad_request(f"cannot fetch the image: {reason}", param, "image_fetch_failed") from None
    if len(data) > settings.max_image_bytes:
        raise too_large(f"the image is larger than {settings.max_image_bytes} bytes", param)
    return data


def decode_image_bytes(data: bytes, param: str, settings: ServerSettings) -> Image.Image:
    """Check format, byte size and pixel count before decoding the pixels."""
    if len(data) > settings.max_image_bytes:
        raise too_large(f"the image is larger than {settings.max_image_bytes} bytes", param)
    try:
        with Image.open(io.BytesIO(data)) as probe:
            kind, (width, height) = probe.format, probe.size
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise bad_request("the data is not an image (PNG, JPEG, WebP or GIF expected)", param,
                          "invalid_image_format") from None
    if kind not in IMAGE_FORMATS:
        raise bad_request(f"unsupported image format {kind} (use PNG, JPEG, WebP or GIF)", param,
                          "invalid_image_format")
    if width * height > settings.max_image_pixels:
        raise bad_request(f"the image is {width}x{height} pixels, more than the limit of {settings.max_image_pixels}",
                          param, "image_too_large")
    try:
        return load_image(data, max_pixels=settings.max_image_pixels)
    except InputError as exc:
        raise bad_request(f"{exc}", param, "invalid_image_format") from None


def check_model(requested: str | None, settings: ServerSettings) -> None:
    if requested not in (None, "", settings.model_id):
        raise APIError(404, f"the model {requested!r} does not exist; this server serves {settings.model_id!r}",
                       param="model", code="model_not_found")
