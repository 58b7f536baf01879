"""The shapes world's language (`shared/shapes-world.md`): generation prompts and their meaning
(`PromptSpec`, which ShapesEval's judge checks images against), the captions a prompt stands for,
short phrases true of a scene, and questions with their answers.

    prompts(scene)                        # every generation prompt (PromptSpec) of the image
    parse_prompt("a red circle to the left of a blue square")   # its PromptSpec
    split_checks("a red circle to the left of a blue square")   # what its images show either side of a line
    descriptions(scene)                   # short phrases true of it ('a circle', 'two shapes', ...)
    questions(scene, rng)                 # one QA per applicable question type
    answer(scene, "What color is the circle?")                 # 'red'
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from januspro.processing.split_check import SplitCheck
from januspro.shapes.world import (
    COLORS,
    INVERSE,
    NUMBER_WORDS,
    POSITIONS,
    RELATIONS,
    SHAPES,
    SIZES,
    Color,
    Obj,
    Scene,
    Shape,
    check_name,
    choose,
    naming_order,
    relation_holds,
    relations_between,
    sample_count,
    sample_pair,
    sample_single,
)

PREFIX = "an image of "
COUNT_QUESTION = "How many shapes are there?"


@dataclass(frozen=True)
class ObjSpec:
    """A named object of a prompt; size and position only when the prompt gives them."""

    color: Color
    shape: Shape
    size: str | None = None
    position: str | None = None

    def phrase(self) -> str:
        size = f"{self.size} " if self.size else ""
        where = f" in the {self.position}" if self.position else ""
        return f"a {size}{self.color} {self.shape}{where}"


@dataclass(frozen=True)
class PromptSpec:
    """A generation prompt with its meaning, which ShapesEval's judge checks images against.

    category: the ShapesEval category (single_object, two_objects, counting, colors,
    position, color_attribution); relation: from objects[0] to objects[1]; count: counting."""

    category: str
    text: str
    objects: tuple[ObjSpec, ...]
    relation: str | None = None
    count: int | None = None


def single_prompt(obj: ObjSpec, prefix: bool = False, category: str = "single_object") -> PromptSpec:
    return PromptSpec(category, (PREFIX if prefix else "") + obj.phrase(), (obj,))


def pair_prompt(
    first: tuple[Color, Shape], relation: str, second: tuple[Color, Shape], prefix: bool = False,
    category: str = "two_objects",
) -> PromptSpec:
    a, b = ObjSpec(*first), ObjSpec(*second)
    return PromptSpec(category, f"{PREFIX if prefix else ''}{a.phrase()} {relation} {b.phrase()}", (a, b), relation)


def count_prompt(n: int, color: Color, shape: Shape, prefix: bool = False, category: str = "counting") -> PromptSpec:
    text = f"{PREFIX if prefix else ''}{NUMBER_WORDS[n]} {color} {shape}s"
    return PromptSpec(category, text, (ObjSpec(color, shape),), count=n)


def prompts(scene: Scene) -> tuple[PromptSpec, ...]:
    """Every generation prompt that describes the scene's image; the canonical caption first.

    single: with and without size and/or position; pair: canonical naming and the reversed
    naming with the inverse relation; each also with `an image of ` in front."""
    if scene.kind == "single":
        o = scene.objects[0]
        objs = [ObjSpec(o.color, o.shape, size, where) for size in (o.size, None) for where in (o.position, None)]
        bare = [single_prompt(s) for s in objs]
    elif scene.kind == "count":
        o = scene.objects[0]
        bare = [count_prompt(len(scene.objects), o.color, o.shape)]
    else:
        a, b = scene.ordered()
        rel = scene.relation or ""
        bare = [pair_prompt((a.color, a.shape), rel, (b.color, b.shape)),
                pair_prompt((b.color, b.shape), INVERSE[rel], (a.color, a.shape))]
    return tuple(bare) + tuple(PromptSpec(p.category, PREFIX + p.text, p.objects, p.relation, p.count) for p in bare)


def descriptions(scene: Scene) -> tuple[str, ...]:
    """Short phrases true of the scene, for the ViT's contrastive pre-training: per object its
    shape, colour, colour and shape, size and shape (`a circle`, `a red object`, `a red circle`,
    `a small circle`), the object count (`two shapes`) and the canonical caption. A phrase is
    true of exactly the scenes whose descriptions hold it, so every (image, phrase) pair of a
    batch can be scored, not only an image with its own caption."""
    phrases: dict[str, None] = {}  # ordered set
    for o in scene.objects:
        for text in (f"a {o.shape}", f"a {o.color} object", f"a {o.color} {o.shape}", f"a {o.size} {o.shape}"):
            phrases[text] = None
    count = len(scene.objects)
    phrases[f"{NUMBER_WORDS[count]} shape" + ("s" if count > 1 else "")] = None
    phrases[scene.caption] = None
    return tuple(phrases)


def scene_for_prompt(spec: PromptSpec, rng: np.random.Generator) -> Scene:
    """A random scene whose image the prompt describes (what a perfect generator would draw)."""
    if spec.count is not None:
        o = spec.objects[0]
        return sample_count(rng, spec.count, o.color, o.shape)
    if len(spec.objects) == 2:
        a, b = spec.objects
        return sample_pair(rng, (a.color, a.shape), (b.color, b.shape), spec.relation)
    o = spec.objects[0]
    return sample_single(rng, o.color, o.shape, o.size, o.position)


_COLOR_RE = "|".join(COLORS)
_SHAPE_RE = "|".join(SHAPES)
_PROMPT_RES = (
    ("count", re.compile(rf"(two|three) ({_COLOR_RE}) ({_SHAPE_RE})s")),
    ("pair", re.compile(rf"a ({_COLOR_RE}) ({_SHAPE_RE}) ({'|'.join(RELATIONS)}) a ({_COLOR_RE}) ({_SHAPE_RE})")),
    ("single", re.compile(rf"a (?:(small|large) )?({_COLOR_RE}) ({_SHAPE_RE})(?: in the ({'|'.join(POSITIONS)}))?")),
)


def parse_prompt(text: str, category: str | None = None) -> PromptSpec:
    """The PromptSpec of a prompt in the world's grammar (case and a final period ignored);
    ValueError if it is not one. Default category: single_object, two_objects or counting."""
    clean = " ".join(text.lower().split()).rstrip(".")
    body = clean[len(PREFIX):] if clean.startswith(PREFIX) else clean
    for kind, pattern in _PROMPT_RES:
        m = pattern.fullmatch(body)
        if not m:
            continue
        if kind == "count":
            spec = count_prompt({"two": 2, "three": 3}[m[1]], m[2], m[3])
        elif kind == "pair":
            if (m[1], m[2]) == (m[4], m[5]):
                raise ValueError(f"{text!r}: the two objects must differ in colour or shape")
            spec = pair_prompt((m[1], m[2]), m[3], (m[4], m[5]))
        else:
            spec = single_prompt(ObjSpec(m[2], m[3], m[1], m[4]))
        return PromptSpec(category or spec.category, clean, spec.objects, spec.relation, spec.count)
    raise ValueError(f"{text!r} is not a shapes-world prompt")


def captions_for_prompt(text: str) -> tuple[str, ...]:
    """Every canonical caption (`Scene.caption`, the answer to `Describe the image.`) of an image the
    prompt describes: a prompt without size or position stands for each of them (18 captions for
    `a red circle`), a pair prompt for its one caption in naming order (`a blue square to the right of
    a red circle` -> `a red circle to the left of a blue square`). ValueError if `text` is not a
    prompt of the world. Ranking generated samples by the likelihood of these, instead of the
    prompt's own wording, asks the model what it was taught to say."""
    spec = parse_prompt(text)
    if spec.count is not None:
        o = spec.objects[0]
        return (f"{NUMBER_WORDS[spec.count]} {o.color} {o.shape}s",)
    if spec.relation is not None:
        a, b = spec.objects
        in_order = naming_order(a.color, a.shape) < naming_order(b.color, b.shape)
        first, relation, second = (a, spec.relation, b) if in_order else (b, INVERSE[spec.relation], a)
        return (f"a {first.color} {first.shape} {relation} a {second.color} {second.shape}",)
    o = spec.objects[0]
    sizes = (o.size,) if o.size else tuple(SIZES)
    positions = (o.position,) if o.position else POSITIONS
    return tuple(f"a {size} {o.color} {o.shape} in the {where}" for size in sizes for where in positions)


def split_checks(text: str) -> tuple[SplitCheck, ...]:
    """What an image fitting a prompt shows on either side of some line (`SplitCheck`), in the questions the
    model answers best. A relation: along its axis, the part before the line has the object named there and
    the part after it the other (`a red circle above a blue square`: some horizontal line has `Is there a red
    circle?` answered yes above it and `Is there a blue square?` below it). A count: some line, either way, has
    one shape on each side (two), or one on one side and two on the other (three). Other prompts: none.
    ValueError if `text` is not a prompt of the world. Ranking by these asks where each object is, or how many
    there are in each part, instead of which way round a relation goes or how many small objects a whole image
    holds, which the model reads worst (docs/bundled-model.md)."""
    spec = parse_prompt(text)
    if spec.relation is not None:
        a, b = spec.objects
        return (relation_check((a.color, a.shape), spec.relation, (b.color, b.shape)),)
    if spec.count is not None:
        words = tuple(NUMBER_WORDS.values())
        pairs = tuple((NUMBER_WORDS[k], NUMBER_WORDS[spec.count - k]) for k in range(1, spec.count))
        return (SplitCheck(("x", "y"), COUNT_QUESTION, COUNT_QUESTION, pairs, words),)
    return ()


def relation_check(a: tuple[str, str], relation: str, b: tuple[str, str]) -> SplitCheck:
    """The split check of `a` (colour, shape) `relation` `b`: along the relation's axis, `Is there a {a}?` answered
    yes before some line and `Is there a {b}?` after it (the other way round for right of and below)."""
    first, second = (f"Is there a {color} {shape}?" for color, shape in (a, b))
    axis = "x" if relation in ("to the left of", "to the right of") else "y"
    before, after = (first, second) if relation in ("to the left of", "above") else (second, first)
    return SplitCheck((axis,), before, after)


_RELATION_QUESTION_RE = re.compile(
    rf"is the ({_COLOR_RE}) ({_SHAPE_RE}) ({'|'.join(RELATIONS)}) the ({_COLOR_RE}) ({_SHAPE_RE})\?")
_PAIR_CAPTION_RE = re.compile(rf"a ({_COLOR_RE}) ({_SHAPE_RE}) ({'|'.join(RELATIONS)}) a ({_COLOR_RE}) ({_SHAPE_RE})")
DESCRIBE_QUESTION = "Describe the image."


def _clean(text: str) -> str:
    return " ".join(text.lower().split())


def checks_answer(question_text: str) -> bool:
    """Whether `answer_alternatives` may check an answer to this question: a relation question, or `Describe the
    image.` (whose answer is checked where it is a pair caption)."""
    text = _clean(question_text)
    return _is_describe(text) or _RELATION_QUESTION_RE.fullmatch(text) is not None


def _is_describe(clean_question: str) -> bool:
    return clean_question.rstrip(".") == DESCRIBE_QUESTION.lower().rstrip(".")


def _relation_checks(a: tuple[str, str], b: tuple[str, str]) -> tuple[tuple[str, SplitCheck], ...]:
    """Per relation from `a` to `b`, in `RELATIONS` order: the relation and its split check."""
    return tuple((relation, relation_check(a, relation, b)) for relation in RELATIONS)


def answer_alternatives(question_text: str, answer_text: str) -> tuple[tuple[str, SplitCheck | None], ...]:
    """The answers the model might have meant, each with the split check that holds in an image where it is right,
    to check the model's own answer against (`scoring.verified_answer`): for a relation question (`Is the red
    circle to the left of the blue square?`), `yes` with the asked relation's check, `no` with each of the three
    others', and `no` without a check (where no relation's check is likely, the two objects are not both there);
    for a pair caption answering `Describe the image.`, the caption with each of the four relations, and the
    answer as it is without a check. Other questions and answers: none (the answer stands). The model tells which
    side of a line an object is on far better than which way a relation goes (docs/bundled-model.md), so the
    relation whose check it finds likeliest settles the answer. Both name the same two objects as the question or
    answer; a question naming one object twice gets none."""
    question_clean, answer_clean = _clean(question_text), _clean(answer_text).rstrip(".")
    m = _RELATION_QUESTION_RE.fullmatch(question_clean)
    if m:
        a, asked, b = (m[1], m[2]), m[3], (m[4], m[5])
        if a == b:
            return ()
        checked = tuple(("yes" if relation == asked else "no", check) for relation, check in _relation_checks(a, b))
        return (*checked, ("no", None))
    caption = _PAIR_CAPTION_RE.fullmatch(answer_clean)
    if caption and _is_describe(question_clean):
        a, b = (caption[1], caption[2]), (caption[4], caption[5])
        if a == b:
            return ()
        checked = tuple((f"a {a[0]} {a[1]} {relation} a {b[0]} {b[1]}", check) for relation, check in _relation_checks(a, b))
        return (*checked, (answer_text, None))
    return ()


# -------------------------------------------------------------------------- questions

QUESTION_TYPES: tuple[str, ...] = ("color", "shape", "count", "position", "exists", "relation", "describe")


@dataclass(frozen=True)
class QA:
    """A question about a scene, its short answer, and the same fact as a plain sentence."""

    qtype: str
    question: str
    answer: str
    statement: str


def _unique(scene: Scene, **attrs: str) -> Obj | None:
    found = [o for o in scene.objects if all(getattr(o, k) == v for k, v in attrs.items())]
    return found[0] if len(found) == 1 else None


def question(scene: Scene, qtype: str, rng: np.random.Generator, yes: bool | None = None,
             inverse: float = 0.0) -> QA | None:
    """A random question of `qtype` about the scene, or None where the type does not apply.
    `yes` forces the answer of exists/relation questions (default: a fair coin). `inverse`: the share of
    relation questions answered `no` that name the inverse of the relation that holds (`Is the red circle to the
    right of the blue square?` where it is to the left), the negative that takes knowing which object is where and
    not only how the pair is laid out; the rest name one of the three relations that do not hold (0, the default
    and ShapesEval's: only those, so one in three is the inverse, and no extra draw)."""
    check_name(qtype, QUESTION_TYPES, "question type")
    objs = scene.objects
    if qtype == "color":
        options = [o for o in objs if _unique(scene, shape=o.shape)]
        if not options:
            return None
        o = choose(rng, options)
        return QA(qtype, f"What color is the {o.shape}?", o.color, f"the {o.shape} is {o.color}")  # type: ignore[union-attr]
    if qtype == "shape":
        options = [o for o in objs if _unique(scene, color=o.color)]
        if not options:
            return None
        o = choose(rng, options)
        return QA(qtype, f"What shape is the {o.color} object?", o.shape, f"the {o.color} object is a {o.shape}")  # type: ignore[union-attr]
    if qtype == "count":
        n = len(objs)
        said = "there is one shape" if n == 1 else f"there are {NUMBER_WORDS[n]} shapes"
        return QA(qtype, COUNT_QUESTION, NUMBER_WORDS[n], said)
    if qtype == "position":
        if scene.kind != "single":
            return None
        o = objs[0]
        return QA(qtype, f"Where is the {o.name}?", o.position, f"the {o.name} is in the {o.position}")
    if qtype == "describe":
        return QA(qtype, DESCRIBE_QUESTION, scene.caption, scene.caption)
    yes = bool(rng.integers(2)) if yes is None else yes
    if qtype == "exists":
        present = sorted({(o.color, o.shape) for o in objs})
        absent = [(c, s) for c in COLORS for s in SHAPES if (c, s) not in present]
        color, shape = choose(rng, present if yes else absent)  # type: ignore[misc]
        said = f"there is a {color} {shape}" if yes else f"there is no {color} {shape}"
        return QA(qtype, f"Is there a {color} {shape}?", "yes" if yes else "no", said)
    if scene.kind != "pair":  # relation
        return None
    a, b = objs if rng.integers(2) else objs[::-1]
    held = relations_between(a.center, b.center)
    if not yes and inverse > 0 and rng.random() < inverse:
        relation = INVERSE[held[0]]
    else:
        relation = choose(rng, held if yes else [r for r in RELATIONS if r not in held])
    said = f"the {a.name} is {'' if yes else 'not '}{relation} the {b.name}"
    return QA(qtype, f"Is the {a.name} {relation} the {b.name}?", "yes" if yes else "no", said)


def question_types(scene: Scene) -> tuple[str, ...]:
    """The question types that apply to the scene, in QUESTION_TYPES order."""
    applies = {
        "color": any(_unique(scene, shape=o.shape) for o in scene.objects),
        "shape": any(_unique(scene, color=o.color) for o in scene.objects),
        "position": scene.kind == "single",
        "relation": scene.kind == "pair",
    }
    return tuple(t for t in QUESTION_TYPES if applies.get(t, True))


def questions(scene: Scene, rng: np.random.Generator) -> tuple[QA, ...]:
    """One random question of every type that applies to the scene, in QUESTION_TYPES order."""
    found = (question(scene, t, rng) for t in QUESTION_TYPES)
    return tuple(q for q in found if q is not None)


_QUESTION_RES = (
    ("color", re.compile(rf"what color is the ({_SHAPE_RE})\?")),
    ("shape", re.compile(rf"what shape is the ({_COLOR_RE}) object\?")),
    ("count", re.compile(r"how many shapes are there\?")),
    ("position", re.compile(rf"where is the ({_COLOR_RE}) ({_SHAPE_RE})\?")),
    ("exists", re.compile(rf"is there a ({_COLOR_RE}) ({_SHAPE_RE})\?")),
    ("relation", _RELATION_QUESTION_RE),
    ("describe", re.compile(r"describe the image\.")),
)


def answer(scene: Scene, question_text: str) -> str | None:
    """The right answer to a question of the contract about the scene, or None if the question
    is not one of the contract's or does not apply (an object it names is not unique)."""
    text = " ".join(question_text.lower().split())
    for qtype, pattern in _QUESTION_RES:
        m = pattern.fullmatch(text)
        if not m:
            continue
        if qtype == "color":
            o = _unique(scene, shape=m[1])
            return o.color if o else None
        if qtype == "shape":
            o = _unique(scene, color=m[1])
            return o.shape if o else None
        if qtype == "count":
            return NUMBER_WORDS[len(scene.objects)]
        if qtype == "position":
            o = _unique(scene, color=m[1], shape=m[2])
            return o.position if o else None
        if qtype == "exists":
            return "yes" if any((o.color, o.shape) == (m[1], m[2]) for o in scene.objects) else "no"
        if qtype == "relation":
            a, b = _unique(scene, color=m[1], shape=m[2]), _unique(scene, color=m[4], shape=m[5])
            if a is None or b is None or a is b:
                return None
            return "yes" if relation_holds(m[3], a.center, b.center) else "no"
        return scene.caption
    return None


_PUNCTUATION = re.compile(r"[^\w\s]")


def normalize_answer(text: str) -> str:
    """Lower-case, punctuation to spaces, collapsed whitespace, no leading article
    (a / an / the): how ShapesEval compares answers."""
    words = _PUNCTUATION.sub(" ", text.lower()).split()
    if words and words[0] in ("a", "an", "the"):
        words = words[1:]
    return " ".join(words)
