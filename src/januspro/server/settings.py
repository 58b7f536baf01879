"""What the HTTP server allows: limits, queue sizes, switches. One frozen object, made by the
CLI from its flags (or by tests directly) and handed to `create_app`."""

from __future__ import annotations

from dataclasses import dataclass

MB = 1024 * 1024


@dataclass(frozen=True)
class ServerSettings:
    model_id: str = "januspro"  # the id clients pass as `model` and GET /v1/models lists
    api_key: str | None = None  # when set, requests need `Authorization: Bearer <api_key>`
    cors_origins: tuple[str, ...] = ()  # browser origins allowed to call the API ("*" for any)

    # Scheduling (see scheduler.py): requests waiting beyond `max_queue` get a 503.
    max_queue: int = 64
    max_batch: int = 8  # chat rows answered in one batch

    # Chat limits. Prompts are also checked in tokens against the model's context.
    max_messages: int = 64
    max_message_chars: int = 32_000
    max_images_per_request: int = 8
    max_chat_n: int = 8
    default_max_tokens: int = 512

    # Image-generation limits.
    max_images: int = 8  # n per request
    max_prompt_chars: int = 4_000

    # Input images and request bodies.
    max_image_bytes: int = 20 * MB
    max_image_pixels: int = 25_000_000
    max_body_bytes: int = 64 * MB
    allow_remote_images: bool = False
    remote_image_timeout_s: float = 10.0

    # Upscaling (`upscale` in image requests): Real-ESRGAN weights (file or folder), else
    # $JANUSPRO_UPSCALER, else Lanczos.
    upscale_weights: str | None = None

    # How often a waiting request checks whether its client has gone.
    disconnect_poll_s: float = 0.25
