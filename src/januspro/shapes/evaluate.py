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

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np
from januspro.errors import InputError
from januspro.shapes.judge import CATEGORIES, judge
from januspro.shapes.language import (
    QA, QUESTION_TYPES, ObjSpec, PromptSpec, count_prompt, normalize_answer, pair_prompt, prompts, question,
    single_prompt,
)
from januspro.shapes.world import (
    COLORS, IMAGE_SIZE, INVERSE, POSITIONS, SHAPES, Scene, render, sample_pair, sample_scene, sample_single,
)

if TYPE_CHECKING:
    import torch

    from januspro.engine import Janus
    from januspro.shapes.binding_probe import BindingProbe
    from januspro.shapes.vit_probe import VisionProbe

EVAL_SEED = 7777
# The word classes of the word probe (`probe_words`): position words, relation words, colour and shape.
# `color binding` swaps the colours of a pair's two objects (two words): a model that reads which colours a
# prompt names but not which shape each belongs to prefers its caption only half the time.
PROBED_WORDS = ("left / right", "top / bottom", "left of / right of", "above / below", "color", "shape", "color binding")
Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass(frozen=True)
class EvalOptions:
    seed: int = EVAL_SEED
    prompts_per_category: int = 25
    images_per_prompt: int = 4
    questions_per_type: int = 50
    cfg_weight: float | None = None  # None: the model's default guidance (its processor_config.json)
    temperature: float | None = None  # image token sampling (None: the model's default); answers are always greedy
    candidates: int | None = None  # samples per judged image, ranked by the model itself (None: the model's default)
    batch_size: int = 32  # questions per chat_batch call
    max_new_tokens: int = 48
    generation: bool = True
    understanding: bool = True
    word_probe: bool = False  # also measure which prompt words the generation reads (`probe_words`)
    probe_scenes: int = 50  # scenes per probed word class
    vision_probe: bool = False  # also measure what the ViT's patch features tell (`vit_probe.probe_vision`)
    vision_probe_scenes: tuple[int, int] = (20000, 3000)  # the vision probe's training and held-out scenes
    binding_probe: bool = False  # also ask the questions that take binding (`binding_probe.probe_binding`)
    binding_probe_scenes: int = 200  # pair scenes the binding probe asks about
    # Also judge every sample drawn (images_per_prompt x candidates per prompt), not only the ones the model keeps:
    # how often the generator draws a right image, and the score a perfect ranking of its samples would reach
    # (`GenerationReport.drawn`), which tells the generator's limit from the ranking's.
    judge_drawn: bool = False

    def check(self) -> None:
        if self.seed < 0:
            raise InputError(f"seed must be >= 0, got {self.seed}")
        for name in ("prompts_per_category", "images_per_prompt", "questions_per_type", "candidates", "batch_size",
                     "max_new_tokens", "probe_scenes", "binding_probe_scenes"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise InputError(f"{name} must be >= 1, got {getattr(self, name)}")
        if len(self.vision_probe_scenes) != 2 or min(self.vision_probe_scenes) < 1:
            raise InputError(f"vision_probe_scenes must be two counts >= 1 (training, held out), got {self.vision_probe_scenes}")
        if not (self.generation or self.understanding or self.word_probe or self.vision_probe or self.binding_probe):
            raise InputError("nothing to evaluate: generation, understanding and the probes are off")
        if self.judge_drawn and not self.generation:
            raise InputError("judging the drawn samples needs the generation evaluation (drop --skip-generation)")
        if any(value is not None and not value >= 0 for value in (self.cfg_weight, self.temperature)):
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
    diversity: float | None = None  # see `code_diversity`; None with one image per prompt
    duplicates: float | None = None
    drawn_correct: tuple[bool, ...] = ()  # with `EvalOptions.judge_drawn`: the verdict on every sample drawn


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
class DrawnScore:
    """One category's samples judged before the model's ranking kept some (`EvalOptions.judge_drawn`)."""

    name: str
    right: int  # samples the judge finds right
    drawn: int  # samples drawn
    best_possible: int  # judged images right had the judge itself kept them: min(images per prompt, right) per prompt
    images: int  # judged images (prompts x images per prompt)

    @classmethod
    def of(cls, name: str, outcomes: Sequence[PromptOutcome]) -> DrawnScore:
        """The score of one category's prompt outcomes (judged with `EvalOptions.judge_drawn`)."""
        return cls(name, sum(sum(o.drawn_correct) for o in outcomes), sum(len(o.drawn_correct) for o in outcomes),
                   sum(min(len(o.correct), sum(o.drawn_correct)) for o in outcomes),
                   sum(len(o.correct) for o in outcomes))

    @property
    def share(self) -> float:
        return self.right / self.drawn if self.drawn else 0.0

    @property
    def ceiling(self) -> float:
        return self.best_possible / self.images if self.images else 0.0


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
    # Mean over prompts of `code_diversity` of their images: how different the images of one prompt are (a cooler
    # temperature or a stronger guidance can raise the scores by drawing the same image every time). None with one
    # image per prompt.
    diversity: float | None = None
    duplicates: float | None = None
    drawn: tuple[DrawnScore, ...] | None = None  # with `EvalOptions.judge_drawn`, per category


@dataclass(frozen=True)
class QuestionOutcome:
    qtype: str
    question: str
    expected: str
    answer: str
    correct: bool
    # Where the model checked its answer (`ChatOptions.verify`) and that changed it: its own answer, unchecked.
    unchecked_answer: str | None = None
    unchecked_correct: bool | None = None  # None: as `correct` (the check changed nothing)

    @property
    def right_unchecked(self) -> bool:
        """Whether the model's own answer, before any check, was right."""
        return self.correct if self.unchecked_correct is None else self.unchecked_correct


@dataclass(frozen=True)
class UnderstandingReport:
    types: tuple[Score, ...]
    overall: float  # fraction of all questions answered right
    outcomes: tuple[QuestionOutcome, ...]
    # The same for the model's own answers, before the checks of `ChatOptions.verify` (the bundled model checks
    # relation questions and pair captions; equal to the above for a model that checks nothing).
    unchecked_types: tuple[Score, ...] = ()
    unchecked_overall: float | None = None


@dataclass(frozen=True)
class WordProbe:
    """How much the generation relies on one class of prompt words: each scene's codes scored
    (mean log-probability per code, teacher-forced) under its caption and under the caption
    with that word swapped. A model that ignores the word scores both alike (prefers 0.5)."""

    name: str
    scenes: int
    logprob: float  # mean over scenes, own caption
    swapped_logprob: float  # mean over scenes, the word swapped
    prefers: float  # fraction of scenes scored higher under their own caption

    @property
    def gap(self) -> float:
        return self.logprob - self.swapped_logprob


@dataclass(frozen=True)
class ShapesEvalReport:
    model: str
    seed: int
    generation: GenerationReport | None
    understanding: UnderstandingReport | None
    word_probe: tuple[WordProbe, ...] | None = None
    vision_probe: VisionProbe | None = None
    binding_probe: BindingProbe | None = None

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
                "diversity": g.diversity, "duplicates": g.duplicates,
            }
            if g.drawn is not None:
                out["generation"]["drawn"] = {
                    d.name: {"samples": d.drawn, "samples_right": d.share, "best_possible": d.ceiling} for d in g.drawn}
            if details:
                out["generation"]["prompts"] = [
                    {"category": o.category, "prompt": o.prompt, "seed": o.seed, "correct": list(o.correct),
                     "reasons": list(o.reasons), "diversity": o.diversity, "duplicates": o.duplicates}
                    | ({"drawn": len(o.drawn_correct), "drawn_right": sum(o.drawn_correct)} if g.drawn is not None else {})
                    for o in g.outcomes
                ]
        if self.understanding is not None:
            u = self.understanding
            unchecked = {s.name: s for s in u.unchecked_types}
            out["understanding"] = {
                "overall": u.overall,
                "types": {s.name: {"accuracy": s.score, "correct": s.correct, "questions": s.total}
                          | ({"unchecked_accuracy": unchecked[s.name].score} if s.name in unchecked else {})
                          for s in u.types},
                "unchecked_overall": u.unchecked_overall,
            }
            if details:
                out["understanding"]["questions"] = [
                    {"type": o.qtype, "question": o.question, "expected": o.expected, "answer": o.answer,
                     "correct": o.correct}
                    | ({"unchecked_answer": o.unchecked_answer, "unchecked_correct": o.unchecked_correct}
                       if o.unchecked_answer is not None else {})
                    for o in u.outcomes
                ]
        if self.word_probe is not None:
            out["word_probe"] = {w.name: {"scenes": w.scenes, "logprob": w.logprob, "swapped_logprob": w.swapped_logprob,
                                          "gap": w.gap, "prefers": w.prefers} for w in self.word_probe}
        if self.vision_probe is not None:
            out["vision_probe"] = asdict(self.vision_probe)
        if self.binding_probe is not None:
            out["binding_probe"] = asdict(self.binding_probe)
        return out


# -------------------------------------------------------------------------- evaluation


def code_diversity(codes: torch.Tensor) -> tuple[float | None, float | None]:
    """(diversity, duplicates) of one prompt's images from their VQ codes [n, N]: the share of code positions
    that differ, averaged over all pairs of images, and the share of pairs that are identical. (None, None) for
    one image."""
    import torch

    n = codes.shape[0]
    if n < 2:
        return None, None
    first, second = torch.triu_indices(n, n, offset=1)  # every pair once
    differ = (codes[first] != codes[second]).float().mean(-1)  # [pairs]
    return float(differ.mean()), float((differ == 0).float().mean())


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


def evaluate_generation(janus: Janus, options: EvalOptions = EvalOptions(), progress: Progress | None = None) -> GenerationReport:
    """Generate and judge every prompt of the six categories."""
    from januspro.engine import ImageOptions

    specs = [s for c in CATEGORIES for s in eval_prompts(c, options.prompts_per_category, options.seed)]
    cfg_weight = janus.cfg_weight(options.cfg_weight)
    temperature = janus.image_temperature(options.temperature)
    candidates = janus.candidates(ImageOptions(n=options.images_per_prompt, candidates=options.candidates))
    outcomes = []
    for index, spec in enumerate(specs):
        seed = int(np.random.SeedSequence([options.seed, 3, index]).generate_state(1)[0])
        result = janus.generate_images(spec.text, ImageOptions(
            n=options.images_per_prompt, seed=seed, cfg_weight=cfg_weight, temperature=temperature,
            candidates=candidates, keep_drawn=options.judge_drawn,
        ))
        verdicts = [judge(spec, image) for image in result.images]
        diversity, duplicates = code_diversity(result.codes)
        drawn_correct = tuple(judge(spec, image).correct for image in result.drawn) if options.judge_drawn else ()
        outcomes.append(PromptOutcome(spec.category, spec.text, seed, tuple(v.correct for v in verdicts),
                                      tuple(v.reason for v in verdicts), diversity, duplicates, drawn_correct))
        if progress:
            progress("generation", index + 1, len(specs))
    scores = tuple(
        Score(c, sum(sum(o.correct) for o in outcomes if o.category == c), sum(len(o.correct) for o in outcomes if o.category == c))
        for c in CATEGORIES
    )
    drawn = None
    if options.judge_drawn:
        drawn = tuple(DrawnScore.of(c, [o for o in outcomes if o.category == c]) for c in CATEGORIES)
    return GenerationReport(
        scores, float(np.mean([s.score for s in scores])), tuple(outcomes), options.images_per_prompt,
        cfg_weight, temperature, janus.config.gen_vision.image_size, candidates,
        _mean([o.diversity for o in outcomes]), _mean([o.duplicates for o in outcomes]), drawn,
    )


def evaluate_understanding(janus: Janus, options: EvalOptions = EvalOptions(), progress: Progress | None = None) -> UnderstandingReport:
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
            own = result.unverified
            own_right = None if own is None else normalize_answer(own) == normalize_answer(qa.answer)
            outcomes.append(QuestionOutcome(qa.qtype, qa.question, qa.answer, result.text, right, own, own_right))
        if progress:
            progress("understanding", len(outcomes), len(items))

    def scores(right: Callable[[QuestionOutcome], bool]) -> tuple[Score, ...]:
        return tuple(Score(t, sum(right(o) for o in outcomes if o.qtype == t), sum(1 for o in outcomes if o.qtype == t))
                     for t in QUESTION_TYPES)

    return UnderstandingReport(scores(lambda o: o.correct), sum(o.correct for o in outcomes) / len(outcomes),
                               tuple(outcomes), scores(lambda o: o.right_unchecked),
                               sum(o.right_unchecked for o in outcomes) / len(outcomes))


def _swap_words(position: str, pair: dict[str, str]) -> str:
    return " ".join(pair.get(word, word) for word in position.split())


def _other_than(rng: np.random.Generator, options: Sequence[str], than: str) -> str:
    rest = [o for o in options if o != than]
    return rest[int(rng.integers(len(rest)))]


def probe_scenes(name: str, n: int, seed: int = EVAL_SEED) -> tuple[tuple[Scene, str, str], ...]:
    """`n` (scene, its caption, the caption with one word of class `name` swapped) triples (`color binding`:
    the two colours exchanged)."""
    if name not in PROBED_WORDS:
        raise InputError(f"unknown word class {name!r}; one of {', '.join(PROBED_WORDS)}")
    rng = np.random.default_rng([seed, 4, PROBED_WORDS.index(name)])
    out = []
    for _ in range(n):
        if name in ("left of / right of", "above / below"):
            options = ("to the left of", "to the right of") if name == "left of / right of" else ("above", "below")
            scene = sample_pair(rng, relation=options[int(rng.integers(2))])
            a, b = scene.ordered()
            swapped = pair_prompt((a.color, a.shape), INVERSE[scene.relation or ""], (b.color, b.shape)).text
        elif name == "color binding":
            first = (COLORS[int(rng.integers(len(COLORS)))], SHAPES[int(rng.integers(len(SHAPES)))])
            second = (_other_than(rng, COLORS, first[0]), _other_than(rng, SHAPES, first[1]))
            scene = sample_pair(rng, first, second)  # type: ignore[arg-type]
            a, b = scene.ordered()
            swapped = pair_prompt((b.color, a.shape), scene.relation or "", (a.color, b.shape)).text
        else:
            axis = {"left / right": ("left", "right"), "top / bottom": ("top", "bottom")}.get(name)
            positions = [p for p in POSITIONS if axis is None or set(axis) & set(p.split())]
            scene = sample_single(rng, position=positions[int(rng.integers(len(positions)))])
            o = scene.objects[0]
            color, shape, position = o.color, o.shape, o.position
            if axis is not None:
                position = _swap_words(position, {axis[0]: axis[1], axis[1]: axis[0]})
            elif name == "color":
                color = COLORS[(COLORS.index(o.color) + 1) % len(COLORS)]
            else:
                shape = SHAPES[(SHAPES.index(o.shape) + 1) % len(SHAPES)]
            swapped = single_prompt(ObjSpec(color, shape, o.size, position)).text
        out.append((scene, scene.caption, swapped))
    return tuple(out)


def probe_words(janus: Janus, options: EvalOptions = EvalOptions(), progress: Progress | None = None) -> tuple[WordProbe, ...]:
    """Which prompt words the generation reads: for each class of `PROBED_WORDS`, held-out scenes
    scored under their caption and the caption with that word swapped (`WordProbe`). Free of
    sampling noise, so it tells apart models whose ShapesEval scores differ by less than the
    noise, and it names what a model ignores (a generation score only says that images fail)."""
    out = []
    for index, name in enumerate(PROBED_WORDS):
        own, swapped = [], []
        for scene, caption, other in probe_scenes(name, options.probe_scenes, options.seed):
            image = [render(scene)]
            own.append(float(janus.image_code_logprobs(image, caption)[0]))
            swapped.append(float(janus.image_code_logprobs(image, other)[0]))
        out.append(WordProbe(name, len(own), float(np.mean(own)), float(np.mean(swapped)),
                             float(np.mean(np.array(own) > np.array(swapped)))))
        if progress:
            progress("word probe", index + 1, len(PROBED_WORDS))
    return tuple(out)


def evaluate(janus: Janus, options: EvalOptions = EvalOptions(), progress: Progress | None = None) -> ShapesEvalReport:
    """ShapesEval on a loaded model: generation, understanding and the word probe, as `options` say."""
    options.check()
    generation = evaluate_generation(janus, options, progress) if options.generation else None
    understanding = evaluate_understanding(janus, options, progress) if options.understanding else None
    words = probe_words(janus, options, progress) if options.word_probe else None
    vision = None
    if options.vision_probe:
        from januspro.shapes.vit_probe import probe_vision  # (imports torch)

        train, test = options.vision_probe_scenes
        vision = probe_vision(janus, options.seed, train, test, progress=progress)
    binding = None
    if options.binding_probe:
        from januspro.shapes.binding_probe import probe_binding

        binding = probe_binding(janus, options.binding_probe_scenes, options.seed, options.batch_size, progress)
    return ShapesEvalReport(janus.name, options.seed, generation, understanding, words, vision, binding)


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
        if g.diversity is not None and g.duplicates is not None:
            lines.append(f"  diversity {g.diversity:.3f} (share of codes that differ between two images of one prompt), "
                         f"identical pairs {g.duplicates:.3f}")
        if g.drawn is not None:
            lines += ["", "every drawn sample judged (right: share of samples the judge finds right; best possible: "
                          "the score had the judge kept the images)",
                      f"  {'category':<20}{'samples':>8}{'right':>8}{'best possible':>15}{'kept':>8}"]
            for d, s in zip(g.drawn, g.categories):
                lines.append(f"  {d.name:<20}{d.drawn:>8}{d.share:>8.3f}{d.ceiling:>15.3f}{s.score:>8.3f}")
            lines.append(f"  {'overall (mean)':<20}{'':>8}{np.mean([d.share for d in g.drawn]):>8.3f}"
                         f"{np.mean([d.ceiling for d in g.drawn]):>15.3f}{g.overall:>8.3f}")
    u = report.understanding
    if u is not None:
        lines += ["", "understanding (greedy answers; unchecked: the model's own, before it checks them)",
                  f"  {'question type':<20}{'questions':>10}{'correct':>9}{'accuracy':>10}{'unchecked':>11}"]
        own = {s.name: s.score for s in u.unchecked_types}
        for s in u.types:
            lines.append(f"  {s.name:<20}{s.total:>10}{s.correct:>9}{s.score:>10.3f}{own.get(s.name, s.score):>11.3f}")
        total = sum(s.total for s in u.types)
        unchecked = u.overall if u.unchecked_overall is None else u.unchecked_overall
        lines.append(f"  {'overall':<20}{total:>10}{sum(s.correct for s in u.types):>9}{u.overall:>10.3f}{unchecked:>11.3f}")
    if report.word_probe is not None:
        lines += ["", ("word probe (mean log-probability per code of held-out scenes: own caption, one word swapped; "
                        "color binding: a pair's two colours exchanged)"),
                  f"  {'words':<20}{'scenes':>7}{'own':>9}{'swapped':>9}{'gap':>8}{'prefers':>9}"]
        for w in report.word_probe:
            lines.append(f"  {w.name:<20}{w.scenes:>7}{w.logprob:>9.3f}{w.swapped_logprob:>9.3f}{w.gap:>8.3f}{w.prefers:>9.2f}")
    v = report.vision_probe
    if v is not None:
        lines += ["", (f"vision probe (an MLP on the frozen ViT's patch features, trained on {v.train_scenes} scenes, "
                       f"names the colour-shape objects of {v.test_scenes} held-out ones)"),
                  "  all objects right: " + ", ".join(f"{kind} {share:.3f}" for kind, share in v.exact.items()),
                  f"  objects there found {v.present_recall:.3f}, absent ones ruled out {v.absent_specificity:.3f}"]
    b = report.binding_probe
    if b is not None:
        lines += ["", f"binding probe (greedy answers about {b.scenes} held-out pair scenes)",
                  f"  colour of a shape: its own {b.color_of_shape:.3f}, the other object's {b.color_of_other:.3f}",
                  f"  shape of a colour: its own {b.shape_of_color:.3f}, the other object's {b.shape_of_other:.3f}",
                  f"  relations answered right: the one that holds {b.relation_held:.3f}, its inverse "
                  f"{b.relation_inverse:.3f}, the other axis {b.relation_other_axis:.3f}"]
    return "\n".join(lines)
