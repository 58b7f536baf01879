"""`januspro serve`: the OpenAI-compatible HTTP API.

Imported by the main CLI on every invocation to build its parser, so nothing heavy (fastapi,
uvicorn, torch) is imported at module level; `run` imports what it needs.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from januspro.cli_args import add_model_arguments, check_port_free, load_from_args, port, positive_int

DESCRIPTION = (
    "Serve the model over an OpenAI-compatible HTTP API: POST /v1/chat/completions (text and image "
    "inputs, streaming), POST /v1/images/generations, GET /v1/models, GET /health. Requests queue for "
    "the model (a full queue answers 503) and compatible chat requests are batched together."
)
API_KEY_ENV = "JANUSPRO_API_KEY"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    net = parser.add_argument_group("network")
    net.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    net.add_argument("--port", type=port, default=8000, help="port (default 8000)")
    net.add_argument("--api-key", default=None,
                     help=f"require 'Authorization: Bearer KEY' on /v1 requests (default ${API_KEY_ENV}; none: open)")
    net.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                     help="allow browser calls from ORIGIN (repeat; '*' for any)")
    net.add_argument("--served-model-name", default=None, metavar="ID",
                     help="model id clients pass and /v1/models lists (default: from --model)")
    limits = parser.add_argument_group("limits")
    limits.add_argument("--max-queue", type=positive_int, default=64,
                        help="requests that may wait for the model; beyond, 503 (default 64)")
    limits.add_argument("--max-batch", type=positive_int, default=8,
                        help="chat answers decoded together in one batch (default 8)")
    limits.add_argument("--max-images", type=positive_int, default=8, help="largest n of an image request (default 8)")
    limits.add_argument("--max-tokens", type=positive_int, default=512,
                        help="answer length when a chat request sets no max_tokens (default 512)")
    limits.add_argument("--max-image-mb", type=positive_int, default=20, help="largest input image in MB (default 20)")
    limits.add_argument("--allow-remote-images", action="store_true",
                        help="fetch http(s) image URLs in chat messages (default: only data: URLs)")
    add_model_arguments(parser)
    parser.add_argument("--upscale-weights", default=None, metavar="PATH",
                        help="Real-ESRGAN weights (file, or folder with RealESRGAN_x2plus.pth / RealESRGAN_x4plus.pth) "
                             "for image requests with upscale (default $JANUSPRO_UPSCALER, else Lanczos)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                        help="server log level (default info)")


def default_model_id(model: str | None) -> str:
    """A short id for the served model: the hub id, a folder's name, or the bundled model's."""
    if model is None:
        return "januspro-shapes"
    path = Path(model).expanduser()
    return path.resolve().name if path.is_dir() else model


def run(args: argparse.Namespace) -> int:
    from januspro.errors import JanusError

    try:
        import uvicorn

        from januspro.server.app import create_app
    except ImportError as exc:
        raise JanusError(f"`januspro serve` needs fastapi and uvicorn ({exc.name} is missing): "
                         "pip install 'januspro[serve]'") from None
    from januspro.server.settings import MB, ServerSettings
    from januspro.upscale import weights_summary

    check_port_free(args.host, args.port)
    settings = ServerSettings(
        model_id=args.served_model_name or default_model_id(args.model),
        api_key=args.api_key or os.environ.get(API_KEY_ENV) or None,
        cors_origins=tuple(args.cors_origin),
        max_queue=args.max_queue,
        max_batch=args.max_batch,
        max_chat_n=args.max_batch,
        max_images=args.max_images,
        default_max_tokens=args.max_tokens,
        max_image_bytes=args.max_image_mb * MB,
        max_body_bytes=max(64 * MB, 2 * args.max_image_mb * MB),
        allow_remote_images=args.allow_remote_images,
        upscale_weights=args.upscale_weights,
    )
    janus = load_from_args(args)
    upscalers = weights_summary(args.upscale_weights, janus.device)  # a bad weight file fails now
    log = logging.getLogger("januspro.server")
    print(f"januspro: serving {settings.model_id!r} ({janus.device}, {str(janus.dtype).removeprefix('torch.')}) "
          f"at http://{args.host}:{args.port}/v1", file=sys.stderr)
    for factor, method in upscalers.items():
        print(f"januspro: upscale {factor}x: {method}", file=sys.stderr)
    if settings.api_key is None and args.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("listening on %s without --api-key: anyone who can reach it can use the model", args.host)
    uvicorn.run(create_app(janus, settings), host=args.host, port=args.port, log_level=args.log_level,
                timeout_graceful_shutdown=5)
    return 0
