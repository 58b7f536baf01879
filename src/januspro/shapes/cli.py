"""`januspro eval shapes`: ShapesEval from the command line (an adapter over `evaluate`).

Imported by `januspro.cli` on every invocation: nothing heavy (no torch) at module level.
"""

from __future__ import annotations

import argparse
import json
import sys

from januspro.cli_args import add_model_arguments, load_from_args, non_negative_float, positive_int

DESCRIPTION = (
    "ShapesEval: measure a model on fresh, held-out shapes-world scenes. Generation: prompts of six "
    "categories (single_object, two_objects, counting, colors, position, color_attribution), each image "
    "judged by its objects' colours, shapes and positions; understanding: seven question types answered "
    "greedily. Prints a table per category and question type (or one JSON object with --json). "
    "Training data uses seeds 0-999; the default eval seed 7777 is held out."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("suite", choices=["shapes"], help="the benchmark (shapes: ShapesEval)")
    add_model_arguments(parser)
    run_group = parser.add_argument_group("evaluation")
    run_group.add_argument("--seed", type=int, default=7777, help="draws the scenes and prompts (default 7777, held out)")
    run_group.add_argument("--prompts", type=positive_int, default=25, metavar="N",
                           help="generation prompts per category (default 25)")
    run_group.add_argument("--images-per-prompt", type=positive_int, default=4, metavar="K",
                           help="images generated and judged per prompt (default 4)")
    run_group.add_argument("--questions", type=positive_int, default=50, metavar="N",
                           help="understanding questions per question type (default 50)")
    run_group.add_argument("--cfg", type=non_negative_float, default=None,
                           help="classifier-free guidance weight for generation (default: the model's; 2 for the "
                                "bundled model, 5 for the official ones)")
    run_group.add_argument("--temperature", type=non_negative_float, default=None,
                           help="image token sampling temperature (default: the model's, 1 for the official "
                                "models; answers are greedy)")
    run_group.add_argument("--candidates", type=positive_int, default=None, metavar="K",
                           help="samples drawn per judged image; the model ranks them by how well it finds the "
                                "prompt describes each and keeps the best (default: the model's, 16 for the bundled "
                                "model, 1 for the official ones; 1: no ranking)")
    run_group.add_argument("--batch-size", type=positive_int, default=32, help="questions per batch (default 32)")
    run_group.add_argument("--word-probe", action="store_true",
                           help="also probe which prompt words the generation reads: held-out scenes scored under "
                                "their caption and with one word swapped (left/right, top/bottom, relations, colour, "
                                "shape) or a pair's two colours exchanged (binding); no sampling, so free of its noise")
    run_group.add_argument("--probe-scenes", type=positive_int, default=50, metavar="N",
                           help="scenes per probed word class (default 50)")
    run_group.add_argument("--vision-probe", action="store_true",
                           help="also probe the understanding ViT: an MLP trained on its frozen patch features names "
                                "the objects of held-out scenes, telling a ViT limit from an LLM one (about 40 s)")
    run_group.add_argument("--vision-probe-scenes", type=positive_int, nargs=2, default=(20000, 3000),
                           metavar=("TRAIN", "TEST"), help="scenes the vision probe trains on and is measured on "
                                                           "(default 20000 3000)")
    run_group.add_argument("--binding-probe", action="store_true",
                           help="also ask, about held-out pair scenes, only the questions that take binding: the "
                                "colour of a shape, the shape of a colour (its own object's or the other's?) and all "
                                "four relations (the one that holds, its inverse, the other axis)")
    run_group.add_argument("--binding-probe-scenes", type=positive_int, default=200, metavar="N",
                           help="pair scenes the binding probe asks about (default 200)")
    run_group.add_argument("--judge-drawn", action="store_true",
                           help="also judge every sample drawn, not only those the model keeps: how often the "
                                "generator draws a right image, and the best score a ranking of its samples could "
                                "reach (tells the generator's limit from the ranking's)")
    skip = run_group.add_mutually_exclusive_group()
    skip.add_argument("--skip-generation", action="store_true", help="only evaluate understanding")
    skip.add_argument("--skip-understanding", action="store_true", help="only evaluate generation")
    out = parser.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    out.add_argument("--details", action="store_true", help="with --json: include every prompt and question")
    out.add_argument("--quiet", "-q", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from januspro.shapes.evaluate import EvalOptions, evaluate, format_report

    options = EvalOptions(
        seed=args.seed, prompts_per_category=args.prompts, images_per_prompt=args.images_per_prompt,
        questions_per_type=args.questions, cfg_weight=args.cfg, temperature=args.temperature,
        candidates=args.candidates, batch_size=args.batch_size, generation=not args.skip_generation,
        understanding=not args.skip_understanding, word_probe=args.word_probe, probe_scenes=args.probe_scenes,
        vision_probe=args.vision_probe, vision_probe_scenes=tuple(args.vision_probe_scenes),
        binding_probe=args.binding_probe, binding_probe_scenes=args.binding_probe_scenes,
        judge_drawn=args.judge_drawn,
    )
    options.check()
    janus = load_from_args(args)
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
