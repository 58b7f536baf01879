"""`januspro eval shapes`: ShapesEval from the command line (an adapter over `evaluate`).

Imported by `januspro.cli` on every invocation: nothing heavy (no torch) at module level.
"""

from __future__ import annotations

import argparse
import json
import sys

DESCRIPTION = (
    "ShapesEval: measure a model on fresh, held-out shapes-world scenes. Generation: prompts of six "
    "categories (single_object, two_objects, counting, colors, position, color_attribution), each image "
    "judged by its objects' colours, shapes and positions; understanding: seven question types answered "
    "greedily. Prints a table per category and question type (or one JSON object with --json). "
    "Training data uses seeds 0-999; the default eval seed 7777 is held out."
)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("suite", choices=["shapes"], help="the benchmark (shapes: ShapesEval)")
    model = parser.add_argument_group("model")
    model.add_argument("--model", "-m", default=None, metavar="PATH_OR_ID",
                       help="checkpoint folder or Hugging Face hub id (default: the bundled shapes-world model)")
    model.add_argument("--device", default=None, help="cpu, cuda, cuda:N or mps (default: best available)")
    model.add_argument("--dtype", default=None, help="float32, bfloat16 or float16 (default: bf16 on GPUs, fp32 on CPU)")
    model.add_argument("--chat-format", default=None, choices=["janus-pro", "janus"],
                       help="prompt roles (default from the checkpoint)")
    model.add_argument("--quantize", default=None, choices=["int8"], help="int8 weight-only LLM layers")
    run_group = parser.add_argument_group("evaluation")
    run_group.add_argument("--seed", type=int, default=7777, help="draws the scenes and prompts (default 7777, held out)")
    run_group.add_argument("--prompts", type=_positive_int, default=25, metavar="N",
                           help="generation prompts per category (default 25)")
    run_group.add_argument("--images-per-prompt", type=_positive_int, default=4, metavar="K",
                           help="images generated and judged per prompt (default 4)")
    run_group.add_argument("--questions", type=_positive_int, default=50, metavar="N",
                           help="understanding questions per question type (default 50)")
    run_group.add_argument("--cfg", type=_non_negative_float, default=3.0,
                           help="classifier-free guidance weight for generation (default 3)")
    run_group.add_argument("--temperature", type=_non_negative_float, default=1.0,
                           help="image token sampling temperature (default 1; answers are greedy)")
    run_group.add_argument("--batch-size", type=_positive_int, default=32, help="questions per batch (default 32)")
    skip = run_group.add_mutually_exclusive_group()
    skip.add_argument("--skip-generation", action="store_true", help="only evaluate understanding")
    skip.add_argument("--skip-understanding", action="store_true", help="only evaluate generation")
    out = parser.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    out.add_argument("--details", action="store_true", help="with --json: include every prompt and question")
    out.add_argument("--quiet", "-q", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from januspro.engine import load
    from januspro.shapes.evaluate import EvalOptions, evaluate, format_report

    options = EvalOptions(
        seed=args.seed, prompts_per_category=args.prompts, images_per_prompt=args.images_per_prompt,
        questions_per_type=args.questions, cfg_weight=args.cfg, temperature=args.temperature,
        batch_size=args.batch_size, generation=not args.skip_generation, understanding=not args.skip_understanding,
    )
    options.check()
    janus = load(args.model, device=args.device, dtype=args.dtype, chat_format=args.chat_format,
                 quantize=getattr(args, "quantize", None))
    bars: dict[str, tqdm] = {}

    def progress(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = tqdm(total=total, desc=stage, file=sys.stderr, disable=args.quiet, leave=False)
        bar.update(done - bar.n)

    try:
        report = evaluate(janus, options, progress)
    finally:
        for bar in bars.values():
            bar.close()
    if args.json:
        print(json.dumps(report.to_dict(details=args.details)))
    else:
        print(format_report(report))
    return 0
