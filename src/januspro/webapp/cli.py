"""`januspro web`: the Gradio web app.

Imported by the main CLI on every invocation to build its parser, so nothing heavy (gradio,
torch) is imported at module level; `run` imports what it needs.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys

DESCRIPTION = (
    "Open the web app, laid out like DeepSeek's Janus-Pro demo: Multimodal Understanding (image, "
    "question, seed, top_p, temperature; a multi-turn chat that keeps the image) and Text-to-Image "
    "(prompt, CFG weight, temperature, seed, number of images, 2x upscaling), with examples."
)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _port(text: str) -> int:
    value = _positive(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"must be a port number (1-65535), got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    net = parser.add_argument_group("network")
    net.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    net.add_argument("--port", type=_port, default=7860, help="port (default 7860)")
    net.add_argument("--share", action="store_true", help="also open a public gradio.live link (needs internet)")
    net.add_argument("--auth", default=None, metavar="USER:PASSWORD", help="require this login")
    app = parser.add_argument_group("app")
    app.add_argument("--max-images", type=_positive, default=8, help="most images per generation (default 8)")
    app.add_argument("--max-new-tokens", type=_positive, default=512, help="answer length limit (default 512)")
    app.add_argument("--max-queue", type=_positive, default=32, help="requests that may wait for the model (default 32)")
    app.add_argument("--upscale-weights", default=None, metavar="PATH",
                     help="Real-ESRGAN weights (file, or folder with RealESRGAN_x2plus.pth) for the 2x upscale switch "
                          "(default $JANUSPRO_UPSCALER, else Lanczos)")


def _check_port_free(host: str, port: int) -> None:
    from januspro.errors import JanusError

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        raise JanusError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise JanusError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def run(args: argparse.Namespace) -> int:
    from januspro.errors import InputError, JanusError

    auth = None
    if args.auth is not None:
        user, sep, password = args.auth.partition(":")
        if not sep or not user or not password:
            raise InputError("--auth must be USER:PASSWORD")
        auth = (user, password)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        from januspro.webapp.app import WebSettings, build_app, launch_kwargs
    except ImportError as exc:
        raise JanusError(f"`januspro web` needs gradio ({exc.name} is missing): pip install 'januspro[web]'") from None
    from januspro.engine import load
    from januspro.upscale import weights_summary

    _check_port_free(args.host, args.port)
    janus = load(args.model, device=args.device, dtype=args.dtype, chat_format=args.chat_format,
                 quantize=getattr(args, "quantize", None))
    method = weights_summary(args.upscale_weights, janus.device)[2]  # a bad weight file fails now
    settings = WebSettings(max_images=args.max_images, max_new_tokens=args.max_new_tokens,
                           upscale_weights=args.upscale_weights)
    demo = build_app(janus, settings)
    print(f"januspro: web app for {janus.name} ({janus.device}) at http://{args.host}:{args.port}", file=sys.stderr)
    print(f"januspro: upscale 2x: {method}", file=sys.stderr)
    demo.queue(max_size=args.max_queue).launch(
        server_name=args.host, server_port=args.port, share=args.share, auth=auth, quiet=not args.share,
        **launch_kwargs(),
    )
    return 0
