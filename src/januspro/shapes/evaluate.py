"""ShapesEval: measure both halves of a Janus model on fresh, held-out shapes-world scenes.

    from januspro.shapes.evaluate import EvalOptions, evaluate, format_report
    report = evaluate(janus, EvalOptions(prompts_per_category=25, images_per_prompt=4))
    print(format_report(report))          # or json.dumps(report.to_dict())

Generation (after GenEval): for each of the six categories, `prompts_per_category` prompts,
each drawn `images_per_prompt` times; every image is judged (`judge.judge`); a category's score
is the fraction of its images judged correct, the overall score the mean of the six.

Understanding: `questions_per_type` questions of each of the seven types, about freshly
rendered scenes (exists/relation alternate yes and no), asked greedily in batches; an answer
is right when it equals the expected one after `normalize_answer`. Accuracy per type, and
overall over all questions (equal numbers per type, so the mean of the types too).

Held out: training data uses seeds 0-999 (and `dataset.write_dataset` refuses seeds from
HELD_OUT_SEED = 7000 unless forced); ShapesEval draws everything from seed 7777 by default.
Scenes are drawn from numpy generators seeded with (seed, stage, category), so the first N
prompts of a category are the same whatever the other settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
from januspro.errors import InputError
from januspro.shapes.judge import CATEGORIES, judge
from januspro.shapes.world import (
    COLORS, IMAGE_SIZE, QA, QUESTION_TYPES, SHAPES, ObjSpec, PromptSpec, Scene, count_prompt, normalize_answer, prompts,
    question, render, sample_pair, sample_scene, sample_single, single_prompt,
)

if TYPE_CHECKING:
    from januspro.engine import Janus

EVAL_SEED = 7777
Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass(frozen=True)
class EvalOptions:
    seed: int = EVAL_SEED
    prompts_per_category: int = 25
    images_per_prompt: int = 4
    questions_per_type: int = 50
    cfg_weight: float | None = None  # None: the model's default guidance (its processor_config.json)
    temperature: float = 1.0  # image token sampling; answers are always greedy
    candidates: int = 1  # samples per judged image, ranked by the model itself (ImageOptions.candidates)
    batch_size: int = 32  # questions per chat_batch call
    max_new_tokens: int = 48
    generation: bool = True
    understanding: bool = True

    def check(self) -> None:
        if self.seed < 0:
            raise InputError(f"seed must be >= 0, got {self.seed}")
        for name in ("prompts_per_category", "images_per_prompt", "questions_per_type", "candidates", "batch_size",
                     "max_new_tokens"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not (self.generation or self.understanding):
            raise InputError("nothing to evaluate: both generation and understanding are off")
        if (self.cfg_weight is not None and not self.cfg_weight >= 0) or not self.temperature >= 0:
            raise InputError("cfg_weight and temperature must be >= 0")


# ------------------------------------------------------------------------ the test sets


def eval_prompts(category: str, n: int, seed: int = EVAL_SEED) -> tuple[PromptSpec, ...]:
    """The first `n` prompts of a ShapesEval category."""
    if category not in CATEGORIES:
        raise InputError(f"unknown category {category!r}; one of {', '.join(CATEGORIES)}")
    rng = np.random.default_rng([seed, 1, CATEGORIES.index(category)])
    out = []
    for _ in range(n):
        prefix = bool(rng.integers(2))
        if category == "single_object":
            spec = prompts(sample_single(rng))[int(rng.integers(8))]
        elif category == "colors":
            spec = single_prompt(ObjSpec(COLORS[int(rng.integers(6))], SHAPES[int(rng.integers(3))]), prefix)
        elif category == "counting":
            spec = count_prompt(int(rng.integers(2, 4)), COLORS[int(rng.integers(6))], SHAPES[int(rng.integers(3))], prefix)
        else:
            if category == "color_attribution":  # two colours and two shapes
                colors = rng.permutation(len(COLORS))[:2]
                shapes = rng.permutation(len(SHAPES))[:2]
                scene = sample_pair(rng, (COLORS[colors[0]], SHAPES[shapes[0]]), (COLORS[colors[1]], SHAPES[shapes[1]]))
            else:
                scene = sample_pair(rng)
            spec = prompts(scene)[int(rng.integers(4))]
        out.append(PromptSpec(category, spec.text, spec.objects, spec.relation, spec.count))
    return tuple(out)


def eval_questions(n_per_type: int, seed: int = EVAL_SEED) -> tuple[tuple[Scene, QA], ...]:
    """`n_per_type` (scene, QA) pairs of every question type, types in QUESTION_TYPES order."""
    out = []
    for index, qtype in enumerate(QUESTION_TYPES):
        rng = np.random.default_rng([seed, 2, index])
        kind = {"position": "single", "relation": "pair"}.get(qtype)
        made = 0
        while made < n_per_type:
            scene = sample_scene(rng, kind)
            qa = question(scene, qtype, rng, yes=made % 2 == 0)
            if qa is not None:
                out.append((scene, qa))
                made += 1
    return tuple(out)


# ---------------------------------------------------------------------------- reports


@dataclass(frozen=True)
class PromptOutcome:
    category: str
    prompt: str
    seed: int
    correct: tuple[bool, ...]  # one per image
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Score:
    """Correct out of total for one category or question type."""

    name: str
    correct: int
    total: int

    @property
    def score(self) -> float:
        return self.correct / self.total if self.total else 0.0


@dataclass(frozen=True)
class GenerationReport:
    categories: tuple[Score, ...]
    overall: float  # mean over the categories
    outcomes: tuple[PromptOutcome, ...]
    images_per_prompt: int
    cfg_weight: float
    temperature: float
    native_size: int  # the model's output size; judged after resizing to 64 (see judge.py)
    candidates: int = 1  # samples drawn per judged image, the best kept by the model's own ranking


@dataclass(frozen=True)
class QuestionOutcome:
    qtype: str
    question: str
    expected: str
    answer: str
    correct: bool


@dataclass(frozen=True)
class UnderstandingReport:
    types: tuple[Score, ...]
    overall: float  # fraction of all questions answered right
    outcomes: tuple[QuestionOutcome, ...]


@dataclass(frozen=True)
class ShapesEvalReport:
    model: str
    seed: int
    generation: GenerationReport | None
    understanding: UnderstandingReport | None

    def to_dict(self, details: bool = False) -> dict[str, Any]:
        """A JSON-ready summary; `details` adds every prompt and question."""
        out: dict[str, Any] = {"suite": "shapes", "model": self.model, "seed": self.seed}
        if self.generation is not None:
            g = self.generation
            out["generation"] = {
                "overall": g.overall,
                "categories": {s.name: {"score": s.score, "correct": s.correct, "images": s.total} for s in g.categories},
                "images_per_prompt": g.images_per_prompt, "cfg_weight": g.cfg_weight,
                "temperature": g.temperature, "native_size": g.native_size, "candidates": g.candidates,
            }
            if details:
                out["generation"]["prompts"] = [
                    {"category": o.category, "prompt": o.prompt, "seed": o.seed, "correct": list(o.correct),
                     "reasons": list(o.reasons)} for o in g.outcomes
                ]
        if self.understanding is not None:
            u = self.understanding
            out["understanding"] = {
                "overall": u.overall,
                "types": {s.name: {"accuracy": s.score, "correct": s.correct, "questions": s.total} for s in u.types},
            }
            if details:
                out["understanding"]["questions"] = [
                    {"type": o.qtype, "question": o.question, "expected": o.expected, "answer": o.answer,
                     "correct": o.correct} for o in u.outcomes
                ]
        return out


# -------------------------------------------------------------------------- evaluation


def evaluate_generation(janus: "Janus", options: EvalOptions = EvalOptions(), progress: Progress | None = None) -> GenerationReport:
    """Generate and judge every prompt of the six categories."""
    from januspro.engine import ImageOptions

    specs = [s for c in CATEGORIES for s in eval_prompts(c, options.prompts_per_category, options.seed)]
    cfg_weight = janus.cfg_weight(options.cfg_weight)
    outcomes = []
    for index, spec in enumerate(specs):
        seed = int(np.random.SeedSequence([options.seed, 3, index]).generate_state(1)[0])
        result = janus.generate_images(spec.text, ImageOptions(
            n=options.images_per_prompt, seed=seed, cfg_weight=cfg_weight, temperature=options.temperature,
            candidates=options.candidates,
        ))
        verdicts = [judge(spec, image) for image in result.images]
        outcomes.append(PromptOutcome(spec.category, spec.text, seed, tuple(v.correct for v in verdicts),
                                      tuple(v.reason for v in verdicts)))
        if progress:
            progress("generation", index + 1, len(specs))
    scores = tuple(
        Score(c, sum(sum(o.correct) for o in outcomes if o.category == c), sum(len(o.correct) for o in outcomes if o.category == c))
        for c in CATEGORIES
    )
    return GenerationReport(
        scores, float(np.mean([s.score for s in scores])), tuple(outcomes), options.images_per_prompt,
        cfg_weight, options.temperature, janus.config.gen_vision.image_size, options.candidates,
    )


def evaluate_understanding(janus: "Janus", options: EvalOptions = EvalOptions(), progress: Progress | None = None) -> UnderstandingReport:
    """Ask every question greedily (the processor resizes the 64 px scenes to the encoder's size)."""
    from januspro.engine import ChatOptions
    from januspro.processing.chat_format import Message

    items = eval_questions(options.questions_per_type, options.seed)
    chat = ChatOptions(max_new_tokens=options.max_new_tokens, temperature=0.0)
    outcomes = []
    for start in range(0, len(items), options.batch_size):
        batch = items[start:start + options.batch_size]
        conversations = [[Message("user", qa.question, (render(scene),))] for scene, qa in batch]
        for (_, qa), result in zip(batch, janus.chat_batch(conversations, chat)):
            right = normalize_answer(result.text) == normalize_answer(qa.answer)
            outcomes.append(QuestionOutcome(qa.qtype, qa.question, qa.answer, result.text, right))
        if progress:
            progress("understanding", len(outcomes), len(items))
    scores = tuple(
        Score(t, sum(o.correct for o in outcomes if o.qtype == t), sum(1 for o in outcomes if o.qtype == t))
        for t in QUESTION_TYPES
    )
    return UnderstandingReport(scores, sum(o.correct for o in outcomes) / len(outcomes), tuple(outcomes))


def evaluate(janus: "Janus", options: EvalOptions = EvalOptions(), progress: Progress | None = None) -> ShapesEvalReport:
    """ShapesEval on a loaded model: generation and/or understanding, as `options` say."""
    options.check()
    generation = evaluate_generation(janus, options, progress) if options.generation else None
    understanding = evaluate_understanding(janus, options, progress) if options.understanding else None
    return ShapesEvalReport(janus.name, options.seed, generation, understanding)


run_shapes_eval = evaluate  # the same function, under a name that does not clash with this module's


def format_report(report: ShapesEvalReport) -> str:
    """The report as plain-text tables."""
    lines = [f"ShapesEval: {report.model} (seed {report.seed})"]
    g = report.generation
    if g is not None:
        size = f", judged at {IMAGE_SIZE} px from {g.native_size} px" if g.native_size != IMAGE_SIZE else ""
        ranked = f", each the model's pick of {g.candidates} samples" if g.candidates > 1 else ""
        lines += ["", f"generation ({g.images_per_prompt} images per prompt, cfg {g.cfg_weight:g}, "
                      f"temperature {g.temperature:g}{ranked}{size})",
                  f"  {'category':<20}{'prompts':>8}{'images':>8}{'correct':>9}{'score':>8}"]
        for s in g.categories:
            lines.append(f"  {s.name:<20}{s.total // g.images_per_prompt:>8}{s.total:>8}{s.correct:>9}{s.score:>8.3f}")
        lines.append(f"  {'overall (mean)':<20}{'':>25}{g.overall:>8.3f}")
    u = report.understanding
    if u is not None:
        lines += ["", "understanding (greedy answers)", f"  {'question type':<20}{'questions':>10}{'correct':>9}{'accuracy':>10}"]
        for s in u.types:
            lines.append(f"  {s.name:<20}{s.total:>10}{s.correct:>9}{s.score:>10.3f}")
        total = sum(s.total for s in u.types)
        lines.append(f"  {'overall':<20}{total:>10}{sum(s.correct for s in u.types):>9}{u.overall:>10.3f}")
    return "\n".join(lines)
