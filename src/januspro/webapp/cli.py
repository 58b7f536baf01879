"""`januspro web`: the Gradio web app.

Imported by the main CLI on every invocation to build its parser, so nothing heavy (gradio,
torch) is imported at module level; `run` imports what it needs.
"""

from __future__ import annotations

import argparse
import os
import sys

from januspro.cli_args import add_model_arguments, check_port_free, load_from_args, port, positive_int

DESCRIPTION = (
    "Open the web app, laid out like DeepSeek's Janus-Pro demo: Multimodal Understanding (image, "
    "question, seed, top_p, temperature; a multi-turn chat that keeps the image) and Text-to-Image "
    "(prompt, CFG weight, temperature, seed, number of images, 2x upscaling), with examples."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    net = parser.add_argument_group("network")
    net.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    net.add_argument("--port", type=port, default=7860, help="port (default 7860)")
    net.add_argument("--share", action="store_true", help="also open a public gradio.live link (needs internet)")
    net.add_argument("--auth", default=None, metavar="USER:PASSWORD", help="require this login")
    app = parser.add_argument_group("app")
    app.add_argument("--max-images", type=positive_int, default=8, help="most images per generation (default 8)")
    app.add_argument("--max-new-tokens", type=positive_int, default=512, help="answer length limit (default 512)")
    app.add_argument("--max-queue", type=positive_int, default=32, help="requests that may wait for the model (default 32)")
    app.add_argument("--upscale-weights", default=None, metavar="PATH",
                     help="Real-ESRGAN weights (file, or folder with RealESRGAN_x2plus.pth) for the 2x upscale switch "
                          "(default $JANUSPRO_UPSCALER, else Lanczos)")
    add_model_arguments(parser)


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
    from januspro.upscale import weights_summary

    check_port_free(args.host, args.port)
    janus = load_from_args(args)
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
