"""`januspro train`: run training stages on a model, or reproduce the bundled model.

    januspro train --model PATH --data DIR --out DIR --stage stage3 [--steps N ...]
    januspro train --config run.json [--resume]
    januspro train bundled --out DIR [--resume] # the shapes-world model, from scratch (or where it stopped)
    januspro train vq-decoder --model PATH --data DIR --out DIR   # the VQ decoder only, on frozen codes
    torchrun --nproc_per_node 2 -m januspro.cli train ...   # data parallel (DDP; --strategy fsdp)

Imported by the main CLI on every invocation: nothing heavy at module level.
"""

from __future__ import annotations

import argparse

DESCRIPTION = (
    "Train or fine-tune a Janus model through the paper's stages (stage1: adapters and heads; "
    "stage2: + the LLM; stage3: + the understanding encoder, SFT), or rebuild the bundled "
    "shapes-world model from scratch with `januspro train bundled`, or fine-tune only the VQ decoder on "
    "the text-to-image images of --data with `januspro train vq-decoder` (codes unchanged, so the LLM stays valid)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", nargs="?", choices=["stages", "bundled", "vq-decoder"], default="stages",
                        help="'stages' (default): train --model on --data; 'bundled': rebuild the bundled model; "
                             "'vq-decoder': fine-tune the VQ decoder of --model on the t2i images of --data")
    parser.add_argument("--config", default=None, metavar="JSON", help="a training config file (stages, data, out, ...)")
    parser.add_argument("--model", "-m", default=None, metavar="PATH_OR_ID", help="checkpoint to start from (default: the bundled model)")
    parser.add_argument("--data", action="append", default=[], metavar="DIR", help="dataset folder or .jsonl (repeatable)")
    parser.add_argument("--out", "-o", default=None, help="output folder: the trained checkpoint, loss.csv, loss.png")
    parser.add_argument("--stage", action="append", default=[], choices=["stage1", "stage2", "stage3"],
                        help="stage preset(s) to run, in order (default: stage3)")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps per stage")
    parser.add_argument("--batch-size", type=int, default=None, help="sequences per step, over all processes")
    parser.add_argument("--grad-accum", type=int, default=None, help="micro-batches per step and process")
    parser.add_argument("--lr", type=float, default=None, help="peak learning rate")
    parser.add_argument("--warmup-steps", type=int, default=None)
    parser.add_argument("--mix", default=None, metavar="U:T:I",
                        help="data ratio understanding:text:text-to-image, e.g. 5:1:4 (the stage3 default)")
    parser.add_argument("--uncond-prob", type=float, default=None, help="share of t2i captions replaced by the pad-only prompt")
    parser.add_argument("--ema-decay", type=float, default=None, metavar="D",
                        help="end each stage on an exponential moving average of its weights (e.g. 0.999; default off)")
    parser.add_argument("--lora-rank", type=int, default=0, help="train LoRA adapters of this rank instead of the LLM weights")
    parser.add_argument("--lora-alpha", type=float, default=None)
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    parser.add_argument("--strategy", default="ddp", choices=["ddp", "fsdp"], help="with torchrun")
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--save-every", type=int, default=0, help="checkpoint every N steps (default: end of each stage)")
    parser.add_argument("--strict-data", action="store_true", help="fail on the first bad record instead of skipping it")
    parser.add_argument("--resume", action="store_true", help="continue the run checkpointed in --out (bundled: the build in --workdir where it stopped)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    decoder = parser.add_argument_group("vq-decoder (--steps, --batch-size, --lr, --warmup-steps also apply)")
    decoder.add_argument("--edge-weight", type=float, default=None, metavar="W",
                         help="extra loss weight on pixels at colour edges (default: the bundled recipe's, for "
                              "flat-colour images; 0 for photographs)")
    group = parser.add_argument_group("bundled")
    group.add_argument("--workdir", default=None, help="bundled: where to write the generated data and stage checkpoints (default: OUT-work beside OUT; runs/bundled-work for the packaged model)")
    group.add_argument("--smoke", action="store_true", help="bundled: tiny data and a few steps per stage (a pipeline check)")
    group.add_argument("--seed", type=int, default=0, help="bundled: data and training seed")


def _stage_config(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from januspro.errors import InputError
    from januspro.training.config import LoraConfig, TrainConfig, preset_stage

    if args.config:
        config = TrainConfig.from_file(args.config)
        if args.out:
            from dataclasses import replace

            config = replace(config, out=args.out)
        return config
    if not args.data:
        raise InputError("give --data (a dataset folder) or --config")
    if not args.out:
        raise InputError("give --out (where the trained checkpoint goes)")
    changes = {k: v for k, v in {
        "steps": args.steps, "batch_size": args.batch_size, "grad_accum": args.grad_accum, "lr": args.lr,
        "warmup_steps": args.warmup_steps, "uncond_prob": args.uncond_prob, "ema_decay": args.ema_decay,
    }.items() if v is not None}
    if args.mix:
        try:
            parts = [float(x) for x in args.mix.split(":")]
        except ValueError:
            parts = []
        if len(parts) != 3 or min(parts) < 0 or sum(parts) <= 0:
            raise InputError(f"--mix must be three non-negative numbers U:T:I, got {args.mix!r}")
        changes["mix"] = dict(zip(("understanding", "text", "t2i"), parts))
    if changes.get("lr") is not None:
        changes["lr_overrides"] = {}
    stages = tuple(preset_stage(name, **changes) for name in (args.stage or ["stage3"]))
    lora = None
    if args.lora_rank:
        lora = LoraConfig(rank=args.lora_rank, alpha=args.lora_alpha or 2.0 * args.lora_rank)
    return TrainConfig(
        data=tuple(args.data), out=args.out, stages=stages, init=args.model, precision=args.precision,
        device=args.device, save_every=args.save_every, strategy=args.strategy,
        gradient_checkpointing=args.gradient_checkpointing, lora=lora, strict_data=args.strict_data,
    )


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    if args.what == "bundled":
        from januspro.training.build import build_bundled

        out = Path(args.out) if args.out else None
        path = build_bundled(out, workdir=Path(args.workdir) if args.workdir else None, smoke=args.smoke,
                             seed=args.seed, device=args.device, progress=not args.quiet, resume=args.resume)
        print(path)
        return 0

    if args.what == "vq-decoder":
        return _tune_vq_decoder(args)

    from januspro.engine import load
    from januspro.training.loop import run_training

    config = _stage_config(args)
    janus = None
    if config.init is None:
        janus = load(None, device=args.device, dtype="float32")  # fine-tune the bundled model
    out = run_training(config, janus=janus, resume=args.resume, progress=not args.quiet)
    print(out)
    return 0


def _tune_vq_decoder(args: argparse.Namespace) -> int:
    from dataclasses import replace
    from pathlib import Path

    from januspro.errors import InputError
    from januspro.training.recipe import Recipe
    from januspro.training.vq_decoder import finetune_vq_decoder

    if not args.data:
        raise InputError("give --data (a dataset folder whose text-to-image records hold the images)")
    if not args.out:
        raise InputError("give --out (where the checkpoint with the tuned decoder goes)")
    changes = {k: v for k, v in {"steps": args.steps, "batch_size": args.batch_size, "lr": args.lr,
                                 "warmup_steps": args.warmup_steps, "edge_weight": args.edge_weight}.items()
               if v is not None}
    config = replace(Recipe().vq_decoder, **changes)
    out = finetune_vq_decoder(args.model, args.data, Path(args.out), config, device=args.device,
                              strict=args.strict_data, progress=not args.quiet)
    print(out)
    return 0
