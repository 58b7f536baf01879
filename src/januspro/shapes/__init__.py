"""The shapes world of the bundled model (`shared/shapes-world.md`) and its evaluator.

- `world`: palette, shapes, sizes, grid; seeded scene sampling, exact rendering, captions, and
  the per-patch contents the understanding ViT learns (`patch_contents`).
- `language`: generation prompts (`PromptSpec`) and the captions they stand for, short true
  phrases (`descriptions`), questions and answers.
- `judge`: ShapesEval's image judge (objects of an image, checked against a prompt).
- `dataset`: training data in the pipeline's JSONL + PNG format, or as an in-memory stream.
- `evaluate`: ShapesEval on a loaded `Janus` (reports and text tables); `cli`: `januspro eval`.

Names are loaded on first use, so that `januspro eval --help` stays fast (the functions
named like their modules are exported as `judge_image` and `run_shapes_eval`):

    from januspro.shapes import sample_scene, render, judge_image, write_dataset, run_shapes_eval
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "world": [
        "PALETTE", "COLORS", "SHAPES", "SIZES", "POSITIONS", "RELATIONS", "Obj", "Scene", "sample_scene",
        "sample_single", "sample_pair", "sample_count", "render", "render_array", "patch_contents",
    ],
    "language": [
        "QUESTION_TYPES", "ObjSpec", "PromptSpec", "QA", "prompts", "descriptions", "parse_prompt",
        "captions_for_prompt", "split_checks", "scene_for_prompt", "question", "questions", "question_types",
        "answer", "normalize_answer",
    ],
    "judge": ["CATEGORIES", "Detected", "Judgement", "detect", "judge_image", "scene_from_image"],
    "dataset": ["HELD_OUT_SEED", "Sample", "iter_samples", "write_dataset", "read_records"],
    "evaluate": ["EVAL_SEED", "EvalOptions", "ShapesEvalReport", "run_shapes_eval", "format_report"],
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'januspro.shapes' has no attribute {name!r}")
    return getattr(importlib.import_module(f"januspro.shapes.{_WHERE[name]}"), name)
