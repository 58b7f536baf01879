"""`januspro` command line: a thin adapter over `januspro.engine`.

Answers and file names go to stdout; logs, progress bars and errors go to stderr. Every error
a user can cause is one line (`januspro: error: ...`) and a non-zero exit status.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Callable, Sequence

from januspro.cli_args import add_model_arguments, load_from_args, non_negative_float, positive_int, probability

EXIT_USAGE = 2
EXIT_ERROR = 1


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (the usage is in --help)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _add_sampling_args(parser: argparse.ArgumentParser, temperature: float | None) -> None:
    """`temperature` None: the model's default (`image_temperature` of its processor_config.json)."""
    group = parser.add_argument_group("sampling")
    default = "the model's, 1 for the official models" if temperature is None else f"{temperature:g}"
    group.add_argument("--temperature", type=non_negative_float, default=temperature,
                       help=f"sampling temperature, 0 = greedy (default {default})")
    group.add_argument("--top-p", type=probability, default=None, help="nucleus sampling threshold")
    group.add_argument("--top-k", type=positive_int, default=None, help="sample among the k most likely tokens")
    group.add_argument("--seed", type=int, default=0, help="random seed (default 0): same seed, same output")


# ----------------------------------------------------------------------------- chat


def cmd_chat(args: argparse.Namespace) -> int:
    from januspro.engine import ChatOptions
    from januspro.processing.image import load_image

    images = [load_image(path) for path in args.image]  # fail fast on a bad image, before loading
    options = ChatOptions(
        max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_p=args.top_p,
        top_k=args.top_k, seed=args.seed, system=args.system, verify=False if args.no_verify else None,
    )
    options.sampling()
    janus = load_from_args(args)
    session = janus.session(options)
    if args.question is not None:
        for piece in session.stream(args.question, images):
            sys.stdout.write(piece)
            sys.stdout.flush()
        sys.stdout.write("\n")
        return 0
    return _interactive(session, images)


def _interactive(session, images: list) -> int:  # type: ignore[no-untyped-def]
    from januspro.errors import JanusError
    from januspro.processing.image import load_image

    interactive = sys.stdin.isatty()
    if interactive:
        print("Multi-turn chat. /image PATH attaches an image to your next message; /reset starts over; "
              "/exit or Ctrl-D quits.", file=sys.stderr)
    pending = list(images)
    while True:
        if interactive:
            print("> ", end="", file=sys.stderr, flush=True)
        line = sys.stdin.readline()
        if not line:
            return 0
        line = line.strip()
        if not line:
            continue
        if line in ("/exit", "/quit"):
            return 0
        if line == "/reset":
            session.reset()
            pending = []
            continue
        if line.startswith("/image"):
            try:
                pending.append(load_image(line[len("/image"):].strip()))
            except JanusError as exc:
                print(f"januspro: error: {exc}", file=sys.stderr)
            continue
        try:
            for piece in session.stream(line, pending):
                sys.stdout.write(piece)
                sys.stdout.flush()
        except JanusError as exc:
            print(f"januspro: error: {exc}", file=sys.stderr)
            continue
        finally:
            pending = []
        sys.stdout.write("\n")
        sys.stdout.flush()


# ------------------------------------------------------------------------- generate


def cmd_generate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from januspro.engine import ImageOptions

    options = ImageOptions(
        n=args.n, cfg_weight=args.cfg, temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
        seed=args.seed, memory_budget_gb=args.memory_budget_gb, candidates=args.candidates,
    )
    options.sampling()
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _UserError(f"cannot create output folder {out}: {exc.strerror or exc}") from None
    janus = load_from_args(args)
    bar: tqdm | None = None  # opened at the first step, so that a refused prompt's error stands alone

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc="generating", unit="step", file=sys.stderr, disable=args.quiet, leave=False)
        bar.total = total
        bar.update(done - bar.n)

    try:
        result = janus.generate_images(args.prompt, options, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    images = result.images
    method = None
    if args.upscale:
        from januspro.upscale import upscale_images

        images, method = upscale_images(images, args.upscale, weights=args.upscale_weights, device=janus.device)
        logging.getLogger("januspro").info("upscaled %dx with %s", args.upscale, method)
    for index, image in enumerate(images):
        path = out / f"{index}.png"
        image.save(path)
        print(path)
    if method:
        print(f"upscaled {args.upscale}x with {method}", file=sys.stderr)
    return 0


# ----------------------------------------------------------------------------- info


def cmd_info(args: argparse.Namespace) -> int:
    from januspro.device import dtype_name
    from januspro.packed_linear import parameter_count

    janus = load_from_args(args)
    model, config = janus.model, janus.config

    def count(module) -> str:  # type: ignore[no-untyped-def]
        n = parameter_count(module)
        return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.2f}M"

    lang, vis, vq = config.language, config.vision, config.gen_vision
    report = janus.report
    rows = [
        ("model", janus.name),
        ("weights", f"{report.folder} ({', '.join(report.files)}, {report.layout} layout)" if report else "in memory"),
        ("device", str(janus.device)),
        ("dtype", dtype_name(janus.dtype)),
        ("chat format", janus.processor.chat_format.name),
        ("parameters", count(model)),
        ("  language model", f"{count(model.language_model)}: LLaMA {lang.num_hidden_layers} layers, hidden {lang.hidden_size}, "
                             f"{lang.num_attention_heads} heads ({lang.kv_heads} kv), vocab {lang.vocab_size}, context {lang.max_position_embeddings}"),
        ("  understanding", f"{count(model.vision_model)} + aligner {count(model.aligner)}: SigLIP {vis.layers} layers, width {vis.width}, "
                            f"{vis.image_size}px / patch {vis.patch_size} = {config.num_image_tokens} tokens per image"),
        ("  generation", f"VQ {count(model.gen_vision_model)} + head {count(model.gen_head)} + aligner {count(model.gen_aligner)}: "
                         f"codebook {vq.codebook_size}x{vq.codebook_embed_dim}, {vq.image_size}px = {config.num_gen_tokens} tokens per image, "
                         f"default cfg {janus.processor.cfg_weight:g}, temperature {janus.processor.image_temperature:g}"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return 0


# ----------------------------------------------------------------------------- demo


def cmd_demo(args: argparse.Namespace) -> int:
    from januspro.demo import run_demo

    return run_demo(Path(args.out), device=args.device)


# -------------------------------------------------------------------- other adapters


def _delegate(module: str, function: str) -> Callable[[argparse.Namespace], int]:
    """Commands implemented by other adapters (server, web app, training), loaded on use."""

    def run(args: argparse.Namespace) -> int:
        import importlib

        return int(getattr(importlib.import_module(module), function)(args) or 0)

    return run


class _UserError(Exception):
    pass


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="januspro", description="Janus / Janus-Pro: multimodal understanding and image generation.")
    parser.add_argument("--verbose", "-v", action="store_true", help="log progress details to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    chat = sub.add_parser("chat", help="answer questions about images (interactive without a question)",
                          description="Ask about one or more images. The answer is streamed to stdout. "
                                      "Without QUESTION, starts an interactive multi-turn session.")
    chat.add_argument("question", nargs="?", help="the question (omit for an interactive session)")
    chat.add_argument("--image", "-i", action="append", default=[], metavar="FILE",
                      help="image to ask about (repeat for several; they come before the question)")
    chat.add_argument("--max-new-tokens", type=positive_int, default=512, help="answer length limit (default 512)")
    chat.add_argument("--system", default=None, help="system prompt (default: the model's; '' for none)")
    chat.add_argument("--no-verify", action="store_true",
                      help="print the model's own answers unchecked (the bundled model checks relation questions "
                           "and pair captions by reading parts of the image)")
    _add_sampling_args(chat, temperature=0.0)
    add_model_arguments(chat)
    chat.set_defaults(func=cmd_chat)

    gen = sub.add_parser("generate", help="generate images from a text prompt",
                         description="Text-to-image generation with classifier-free guidance. Writes OUT/0.png, OUT/1.png, ...")
    gen.add_argument("prompt", help="what to draw")
    gen.add_argument("--n", type=positive_int, default=4, help="number of images (default 4)")
    gen.add_argument("--cfg", type=non_negative_float, default=None,
                     help="classifier-free guidance weight (default: the model's; 5 for the official models)")
    gen.add_argument("--candidates", type=positive_int, default=None, metavar="K",
                     help="draw K samples per image and keep the ones the model itself finds the prompt describes "
                          "best (K times the time; default: the model's, 16 for the bundled model, 1 for the "
                          "official ones)")
    gen.add_argument("--out", "-o", default="out", help="output folder (default ./out)")
    gen.add_argument("--memory-budget-gb", type=float, default=None,
                     help="memory the generation may use in total; large --n runs in chunks that fit")
    gen.add_argument("--upscale", type=int, choices=[2, 4], default=None, help="upscale the images 2x or 4x")
    gen.add_argument("--upscale-weights", default=None, metavar="FILE",
                     help="Real-ESRGAN weights (RealESRGAN_x2.pth / RealESRGAN_x4plus.pth; default $JANUSPRO_UPSCALER, "
                          "else Lanczos resampling)")
    gen.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    _add_sampling_args(gen, temperature=None)
    add_model_arguments(gen)
    gen.set_defaults(func=cmd_generate)

    info = sub.add_parser("info", help="describe a model: architecture, parameters, dtype, device, weights")
    add_model_arguments(info)
    info.set_defaults(func=cmd_info)

    demo = sub.add_parser("demo", help="show both tasks on the bundled model")
    demo.add_argument("--out", "-o", default="demo-out", help="where to write the demo's images (default ./demo-out)")
    demo.add_argument("--device", default=None, help="cpu, cuda or mps")
    demo.set_defaults(func=cmd_demo)

    for name, module, help_text in [
        ("serve", "januspro.server.cli", "OpenAI-compatible HTTP API"),
        ("web", "januspro.webapp.cli", "Gradio web app"),
        ("train", "januspro.training.cli", "train or fine-tune (the paper's three stages)"),
        ("eval", "januspro.shapes.cli", "evaluate a model on held-out shapes-world scenes"),
    ]:
        try:
            import importlib

            adapter = importlib.import_module(module)
        except ImportError:
            continue
        command = sub.add_parser(name, help=help_text, description=getattr(adapter, "DESCRIPTION", help_text))
        adapter.add_arguments(command)
        command.set_defaults(func=_delegate(module, "run"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    from januspro.errors import JanusError

    try:
        return int(args.func(args) or 0)
    except (JanusError, _UserError) as exc:
        print(f"januspro: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("januspro: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:
        print(f"januspro: error: {exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""), file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
