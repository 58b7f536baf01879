"""Request bodies of the OpenAI-compatible endpoints, as pydantic models.

Unknown fields are refused (a typo such as `temprature` must not pass silently). OpenAI fields
this server cannot honour are accepted only with their neutral value (`frequency_penalty: 0`,
`tools: []`, `logprobs: false`, ...), so that clients which always send them still work, while
a request that relies on them gets a 400 saying so. Purely informational fields (`user`,
`metadata`, `store`, ...) are accepted and ignored.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

INT64 = 2**63 - 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _finite(value: float | None) -> float | None:
    if value is not None and not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


class ChatMessage(_Strict):
    role: str
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    # Tool use is not supported; these may only be empty.
    tool_calls: list[Any] | None = None
    tool_call_id: str | None = None
    function_call: Any | None = None
    refusal: str | None = None
    audio: Any | None = None

    @model_validator(mode="after")
    def _no_tools(self) -> "ChatMessage":
        if self.tool_calls or self.function_call is not None or self.tool_call_id is not None:
            raise ValueError("tool and function calls are not supported")
        if self.audio is not None:
            raise ValueError("audio is not supported")
        return self


class StreamOptions(_Strict):
    include_usage: bool = False
    include_obfuscation: bool | None = None  # accepted, ignored


class ChatCompletionRequest(_Strict):
    messages: list[ChatMessage] = Field(min_length=1)
    model: str | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    top_k: int | None = Field(default=None, ge=1)  # extension (as vLLM)
    # Extension: whether the model checks an answer about one image where its caption grammar can (ChatOptions.verify;
    # None: the model's default, on for the bundled model).
    verify: bool | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    seed: int | None = Field(default=None, ge=-INT64, le=INT64)
    n: int = Field(default=1, ge=1)
    stream: bool = False
    stream_options: StreamOptions | None = None

    # Accepted only with their neutral value.
    stop: str | list[str] | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    response_format: dict[str, Any] | None = None
    tools: list[Any] | None = None
    tool_choice: Any | None = None
    functions: list[Any] | None = None
    function_call: Any | None = None
    parallel_tool_calls: bool | None = None
    modalities: list[str] | None = None
    audio: Any | None = None
    prediction: Any | None = None
    web_search_options: Any | None = None

    # Informational: accepted and ignored.
    user: str | None = None
    metadata: dict[str, Any] | None = None
    store: bool | None = None
    service_tier: str | None = None
    prompt_cache_key: str | None = None
    safety_identifier: str | None = None
    reasoning_effort: str | None = None
    verbosity: str | None = None

    _finite_floats = field_validator("temperature", "top_p")(_finite)

    @model_validator(mode="after")
    def _unsupported(self) -> "ChatCompletionRequest":
        refuse = {
            "stop": bool(self.stop),
            "frequency_penalty": bool(self.frequency_penalty),
            "presence_penalty": bool(self.presence_penalty),
            "logit_bias": bool(self.logit_bias),
            "logprobs": bool(self.logprobs),
            "top_logprobs": bool(self.top_logprobs),
            "response_format": self.response_format is not None and self.response_format.get("type") != "text",
            "tools": bool(self.tools),
            "functions": bool(self.functions),
            "tool_choice": self.tool_choice not in (None, "none", "auto"),
            "function_call": self.function_call not in (None, "none", "auto"),
            "modalities": self.modalities is not None and self.modalities != ["text"],
            "audio": self.audio is not None,
            "prediction": self.prediction is not None,
            "web_search_options": self.web_search_options is not None,
        }
        for name, refused in refuse.items():
            if refused:
                raise UnsupportedParameter(name)
        if self.stream_options is not None and not self.stream:
            raise ValueError("stream_options is only allowed with stream: true")
        return self

    @property
    def token_limit(self) -> int | None:
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens


class ImageGenerationRequest(_Strict):
    prompt: str
    model: str | None = None
    n: int = Field(default=1, ge=1)
    size: str | None = None
    response_format: Literal["b64_json", "url"] | None = None
    output_format: Literal["png", "jpeg", "webp"] | None = None
    output_compression: int | None = Field(default=None, ge=0, le=100)
    # Extensions: the original demo's controls.
    seed: int | None = Field(default=None, ge=-INT64, le=INT64)
    guidance_scale: float | None = Field(default=None, ge=0, le=100)
    temperature: float | None = Field(default=None, ge=0, le=10)
    top_k: int | None = Field(default=None, ge=1)
    top_p: float | None = Field(default=None, gt=0, le=1)
    upscale: Literal[1, 2, 4] | None = None
    # Samples drawn per returned image, ranked by the model's own reading of them (ImageOptions.candidates;
    # None: the model's default, 8 for the bundled model, 1 for the official ones).
    candidates: int | None = Field(default=None, ge=1)

    # Accepted only with their neutral value.
    stream: bool | None = None
    partial_images: int | None = None
    background: str | None = None

    # Informational: accepted and ignored.
    quality: str | None = None
    style: str | None = None
    moderation: str | None = None
    user: str | None = None

    _finite_floats = field_validator("guidance_scale", "temperature", "top_p")(_finite)

    @model_validator(mode="after")
    def _unsupported(self) -> "ImageGenerationRequest":
        if self.response_format == "url":
            raise UnsupportedParameter("response_format", "response_format 'url' is not supported "
                                       "(images are not hosted); use 'b64_json'")
        if self.stream:
            raise UnsupportedParameter("stream")
        if self.partial_images:
            raise UnsupportedParameter("partial_images")
        if self.background not in (None, "auto", "opaque"):
            raise UnsupportedParameter("background", "only opaque backgrounds are supported")
        return self


class UnsupportedParameter(ValueError):
    """A known OpenAI parameter with a value this server cannot honour."""

    def __init__(self, name: str, message: str | None = None) -> None:
        super().__init__(message or f"{name} is not supported by this server")
        self.name = name
