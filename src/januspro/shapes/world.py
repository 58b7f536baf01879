"""The shapes world: procedural 64x64 scenes of coloured circles, squares and triangles.

This module is the executable form of the contract in `shared/shapes-world.md`: palette,
shapes, sizes, the 3x3 grid, seeded scene sampling, exact rendering, canonical captions,
generation prompts and question/answer pairs. Everything is a deterministic function of a
`numpy.random.Generator`, so a seed names a dataset.

    rng = np.random.default_rng(0)
    scene = sample_scene(rng)             # Scene(objects=(Obj(...), ...))
    image = render(scene)                 # 64x64 RGB PIL image
    scene.caption                         # 'a small red circle in the top left'
    prompts(scene)                        # every generation prompt (PromptSpec) of the image
    descriptions(scene)                   # short phrases true of it ('a circle', 'two shapes', ...)
    questions(scene, rng)                 # one QA per applicable question type

Geometry: pixel (x, y) has integer coordinates, x to the right, y down. An object's bounding
box is [x, x+side-1] x [y, y+side-1] and its centre the centre of that box, a half-integer.
A coordinate c lies in the grid cell that holds floor(c) (cells [0,21], [22,42], [43,63]).
One-object scenes keep their centre at least 1 px inside its cell, so the position survives a
1 px error. "Separated by 3 px" means 3 empty pixel columns or rows between bounding boxes.

Scene kinds, each with one canonical caption that is a function of the image alone:
- single: one object, `a {size} {color} {shape} in the {position}`;
- pair: two objects differing in colour or shape; the centres differ by >= 12 px on exactly one
  axis (the generator keeps the other axis within 8 px). The first-named object comes first in
  (palette index, shape index) order; the relation is what holds from it to the other;
- count: two or three small objects of one colour and shape, `{two|three} {color} {shape}s`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np
from PIL import Image

IMAGE_SIZE = 64
BACKGROUND = (255, 255, 255)
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 38, 38),
    "green": (22, 163, 74),
    "blue": (37, 99, 235),
    "yellow": (234, 179, 8),
    "purple": (147, 51, 234),
    "orange": (249, 115, 22),
}
COLORS: tuple[str, ...] = tuple(PALETTE)
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
SIZES: dict[str, int] = {"small": 12, "large": 22}
GAP = 3  # empty pixels between objects and between an object and the border
CELLS: tuple[tuple[int, int], ...] = ((0, 21), (22, 42), (43, 63))  # inclusive, on each axis
POSITIONS: tuple[str, ...] = (
    "top left", "top", "top right",
    "left", "center", "right",
    "bottom left", "bottom", "bottom right",
)  # row-major: POSITIONS[3 * row + column]
RELATIONS: tuple[str, ...] = ("to the left of", "to the right of", "above", "below")
INVERSE: dict[str, str] = {
    "to the left of": "to the right of", "to the right of": "to the left of", "above": "below", "below": "above",
}
RELATION_MIN_OFFSET = 12  # centres this far apart on an axis are left/right of (above/below) each other
MAX_OFF_AXIS = 8  # pair scenes: the generator keeps the other axis within this (< 12, with slack)
NUMBER_WORDS: dict[int, str] = {1: "one", 2: "two", 3: "three"}
KINDS: tuple[str, ...] = ("single", "pair", "count")
KIND_WEIGHTS: tuple[float, ...] = (0.4, 0.4, 0.2)
PREFIX = "an image of "

Color = str
Shape = str


def cell_index(coord: float) -> int:
    """The grid cell (0, 1, 2) that holds floor(coord)."""
    return 0 if coord < CELLS[1][0] else 1 if coord < CELLS[2][0] else 2


def position_name(center: tuple[float, float]) -> str:
    """`top left` ... `bottom right` for a centre (x, y)."""
    return POSITIONS[3 * cell_index(center[1]) + cell_index(center[0])]


def relations_between(a: tuple[float, float], b: tuple[float, float]) -> tuple[str, ...]:
    """Every relation that holds from the object centred at `a` to the one centred at `b`."""
    dx, dy = b[0] - a[0], b[1] - a[1]
    held = (dx >= RELATION_MIN_OFFSET, -dx >= RELATION_MIN_OFFSET, dy >= RELATION_MIN_OFFSET, -dy >= RELATION_MIN_OFFSET)
    return tuple(r for r, h in zip(RELATIONS, held) if h)


def relation_holds(relation: str, a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Whether `a {relation} b` holds between two centres (12 px rule)."""
    return relation in relations_between(a, b)


def _check_name(value: str, allowed: Sequence[str], what: str) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {what} {value!r}; one of {', '.join(allowed)}")


# ----------------------------------------------------------------------------- scenes


def naming_order(color: str, shape: str) -> tuple[int, int]:
    """Where an object of that colour and shape comes in the naming order of two-object captions: palette
    index, then shape index (the canonical caption names the smaller first)."""
    return COLORS.index(color), SHAPES.index(shape)


@dataclass(frozen=True)
class Obj:
    """One object: colour, shape, size and the top-left corner of its bounding box."""

    color: Color
    shape: Shape
    size: str
    x: int
    y: int

    def __post_init__(self) -> None:
        _check_name(self.color, COLORS, "colour")
        _check_name(self.shape, SHAPES, "shape")
        _check_name(self.size, tuple(SIZES), "size")

    @property
    def side(self) -> int:
        return SIZES[self.size]

    @property
    def box(self) -> tuple[int, int, int, int]:
        """(left, top, right, bottom), inclusive."""
        return self.x, self.y, self.x + self.side - 1, self.y + self.side - 1

    @property
    def center(self) -> tuple[float, float]:
        half = (self.side - 1) / 2
        return self.x + half, self.y + half

    @property
    def position(self) -> str:
        return position_name(self.center)

    @property
    def name(self) -> str:
        return f"{self.color} {self.shape}"

    @property
    def label(self) -> int:
        """Its colour-shape class, colour-major: `COLORS.index(color) * len(SHAPES) + SHAPES.index(shape)`."""
        return COLORS.index(self.color) * len(SHAPES) + SHAPES.index(self.shape)

    @property
    def order(self) -> tuple[int, int]:
        """Naming order of two-object captions: palette index, then shape index."""
        return naming_order(self.color, self.shape)


def separated(a: Obj, b: Obj, gap: int = GAP) -> bool:
    """Whether at least `gap` empty columns or rows lie between the two bounding boxes."""
    (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = a.box, b.box
    return bx0 - ax1 - 1 >= gap or ax0 - bx1 - 1 >= gap or by0 - ay1 - 1 >= gap or ay0 - by1 - 1 >= gap


@dataclass(frozen=True)
class Scene:
    """A valid scene of the contract (checked on construction: raises ValueError)."""

    objects: tuple[Obj, ...]

    def __post_init__(self) -> None:
        objs = self.objects
        if not 1 <= len(objs) <= 3:
            raise ValueError(f"a scene has 1 to 3 objects, not {len(objs)}")
        for o in objs:
            x0, y0, x1, y1 = o.box
            if min(x0, y0) < GAP or max(x1, y1) > IMAGE_SIZE - 1 - GAP:
                raise ValueError(f"{o} is closer than {GAP} px to the border")
        for i, a in enumerate(objs):
            for b in objs[i + 1:]:
                if not separated(a, b):
                    raise ValueError(f"{a} and {b} are closer than {GAP} px")
        same = len({(o.color, o.shape) for o in objs}) == 1
        if len(objs) == 3 or (len(objs) == 2 and same):
            if not same or any(o.size != "small" for o in objs):
                raise ValueError("counting scenes have small objects of one colour and shape")
        elif len(objs) == 2 and len(relations_between(objs[0].center, objs[1].center)) != 1:
            raise ValueError("the two objects must be apart on exactly one axis (12 px rule)")

    @property
    def kind(self) -> str:
        """`single`, `pair` or `count`."""
        if len(self.objects) == 1:
            return "single"
        first = self.objects[0]
        return "count" if all((o.color, o.shape) == (first.color, first.shape) for o in self.objects) else "pair"

    def ordered(self) -> tuple[Obj, ...]:
        """The objects in naming order (palette index, then shape index)."""
        return tuple(sorted(self.objects, key=lambda o: o.order))

    @property
    def relation(self) -> str | None:
        """Pair scenes: the relation from the first-named object to the other."""
        if self.kind != "pair":
            return None
        a, b = self.ordered()
        return relations_between(a.center, b.center)[0]

    @property
    def caption(self) -> str:
        """The canonical caption (a function of the image alone)."""
        o = self.objects[0]
        if self.kind == "single":
            return f"a {o.size} {o.color} {o.shape} in the {o.position}"
        if self.kind == "count":
            return f"{NUMBER_WORDS[len(self.objects)]} {o.color} {o.shape}s"
        a, b = self.ordered()
        return f"a {a.name} {self.relation} a {b.name}"


# --------------------------------------------------------------------------- sampling


@lru_cache(maxsize=None)
def _corners(side: int, cell: int | None) -> tuple[int, ...]:
    """Left (or top) coordinates a box of `side` may take, within `cell` (with 1 px slack)."""
    coords = range(GAP, IMAGE_SIZE - GAP - side + 1)
    if cell is None:
        return tuple(coords)
    lo, hi = CELLS[cell]
    return tuple(c for c in coords if lo + 1 <= c + (side - 1) / 2 < hi)


def _pick(rng: np.random.Generator, options: Sequence) -> object:  # type: ignore[type-arg]
    return options[int(rng.integers(len(options)))]


def _randint(rng: np.random.Generator, lo: int, hi: int) -> int:
    """Uniform integer in [lo, hi]."""
    return int(rng.integers(lo, hi + 1))


def sample_single(
    rng: np.random.Generator,
    color: Color | None = None,
    shape: Shape | None = None,
    size: str | None = None,
    position: str | None = None,
) -> Scene:
    """One object; unspecified attributes are drawn uniformly (position by grid cell)."""
    color = color or _pick(rng, COLORS)
    shape = shape or _pick(rng, SHAPES)
    size = size or _pick(rng, tuple(SIZES))
    position = position or _pick(rng, POSITIONS)
    _check_name(position, POSITIONS, "position")
    row, column = divmod(POSITIONS.index(position), 3)
    side = SIZES[size]  # type: ignore[index]
    x = _pick(rng, _corners(side, column))
    y = _pick(rng, _corners(side, row))
    return Scene((Obj(color, shape, size, x, y),))  # type: ignore[arg-type]


def _other(rng: np.random.Generator, than: tuple[Color, Shape] | None) -> tuple[Color, Shape]:
    """A uniformly drawn (colour, shape) other than `than`."""
    while True:
        drawn = (_pick(rng, COLORS), _pick(rng, SHAPES))
        if drawn != than:
            return drawn  # type: ignore[return-value]


def sample_pair(
    rng: np.random.Generator,
    first: tuple[Color, Shape] | None = None,
    second: tuple[Color, Shape] | None = None,
    relation: str | None = None,
) -> Scene:
    """Two objects (differing in colour or shape) with `first {relation} second`; sizes are
    drawn independently. Objects are returned as (first, second)."""
    if first is None:
        first = _other(rng, second)
    if second is None:
        second = _other(rng, first)
    if first == second:
        raise ValueError("the two objects of a pair scene differ in colour or shape")
    relation = relation or _pick(rng, RELATIONS)
    _check_name(relation, RELATIONS, "relation")
    sa, sb = SIZES[_pick(rng, tuple(SIZES))], SIZES[_pick(rng, tuple(SIZES))]  # type: ignore[index]
    forward = relation in ("to the left of", "above")  # second at the larger coordinate
    limit = IMAGE_SIZE - GAP  # one past the last usable pixel
    # Along the relation axis: first, a gap of GAP, then second (or the reverse).
    if forward:
        a_rel = _randint(rng, GAP, limit - sb - GAP - sa)
        b_rel = _randint(rng, a_rel + sa + GAP, limit - sb)
    else:
        a_rel = _randint(rng, GAP + sb + GAP, limit - sa)
        b_rel = _randint(rng, GAP, a_rel - GAP - sb)
    # Across it: centres within MAX_OFF_AXIS of each other.
    a_off = _randint(rng, GAP, limit - sa)
    a_centre = a_off + (sa - 1) / 2
    lo = max(GAP, math.ceil(a_centre - MAX_OFF_AXIS - (sb - 1) / 2))
    hi = min(limit - sb, math.floor(a_centre + MAX_OFF_AXIS - (sb - 1) / 2))
    b_off = _randint(rng, lo, hi)
    horizontal = relation in ("to the left of", "to the right of")
    size_name = {v: k for k, v in SIZES.items()}
    a_xy = (a_rel, a_off) if horizontal else (a_off, a_rel)
    b_xy = (b_rel, b_off) if horizontal else (b_off, b_rel)
    return Scene((Obj(*first, size_name[sa], *a_xy), Obj(*second, size_name[sb], *b_xy)))


def sample_count(
    rng: np.random.Generator, n: int | None = None, color: Color | None = None, shape: Shape | None = None
) -> Scene:
    """Two or three small objects of one colour and shape, placed uniformly apart."""
    n = n or _randint(rng, 2, 3)
    if n not in (2, 3):
        raise ValueError(f"counting scenes have 2 or 3 objects, not {n}")
    color = color or _pick(rng, COLORS)
    shape = shape or _pick(rng, SHAPES)
    coords = _corners(SIZES["small"], None)
    while True:
        objs: list[Obj] = []
        for _ in range(100):
            o = Obj(color, shape, "small", _pick(rng, coords), _pick(rng, coords))  # type: ignore[arg-type]
            if all(separated(o, p) for p in objs):
                objs.append(o)
                if len(objs) == n:
                    return Scene(tuple(objs))


def sample_scene(rng: np.random.Generator, kind: str | None = None, weights: Sequence[float] = KIND_WEIGHTS) -> Scene:
    """A random scene of `kind` (default: drawn with `weights` over single, pair, count)."""
    if kind is None:
        kind = KINDS[int(rng.choice(len(KINDS), p=np.asarray(weights, dtype=float) / sum(weights)))]
    _check_name(kind, KINDS, "scene kind")
    return {"single": sample_single, "pair": sample_pair, "count": sample_count}[kind](rng)


# -------------------------------------------------------------------------- rendering


@lru_cache(maxsize=None)
def shape_mask(shape: Shape, side: int) -> np.ndarray:
    """Boolean [side, side] mask of a filled shape whose bounding box is exactly side x side.

    circle: pixel centres within side/2 of the box centre; triangle: apex up, the row r
    (from the top) spans |x - (side-1)/2| <= (r+1)/2, so the top row has 2 px and the base is full."""
    yy, xx = np.mgrid[0:side, 0:side]
    middle = (side - 1) / 2
    if shape == "square":
        mask = np.ones((side, side), dtype=bool)
    elif shape == "circle":
        mask = (xx - middle) ** 2 + (yy - middle) ** 2 <= (side / 2) ** 2
    elif shape == "triangle":
        mask = np.abs(xx - middle) <= (yy + 1) / 2
    else:
        raise ValueError(f"unknown shape {shape!r}")
    mask.setflags(write=False)
    return mask


def render_array(scene: Scene) -> np.ndarray:
    """The scene as a [64, 64, 3] uint8 array: white background, solid fills, no anti-aliasing."""
    canvas = np.full((IMAGE_SIZE, IMAGE_SIZE, 3), 255, dtype=np.uint8)
    for o in scene.objects:
        region = canvas[o.y:o.y + o.side, o.x:o.x + o.side]
        region[shape_mask(o.shape, o.side)] = PALETTE[o.color]
    return canvas


def render(scene: Scene) -> Image.Image:
    """The scene as a 64x64 RGB PIL image."""
    return Image.fromarray(render_array(scene), "RGB")


# ---------------------------------------------------------------------------- prompts


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


# Steps of the geometry columns of `patch_contents`: "the object's centre lies right of / below x px", x = 8, 16, ... 56.
GEOMETRY_STEPS = tuple(range(8, IMAGE_SIZE, 8))


def patch_contents(scene: Scene, patch: int, min_pixels: int = 4, geometry: bool = False,
                   relations: bool = False) -> np.ndarray:
    """Which objects each patch of a `patch` x `patch` grid shows: a [patches, colours x shapes]
    0/1 array, row-major patches, column `Obj.label` (colour-major colour-shape class) set
    where an object of that colour and shape covers at least `min_pixels` of the patch. The dense
    target of the understanding ViT: each patch feature learns what it is part of, colour and
    shape bound together, which a loss on the pooled image embedding alone does not force.

    With `geometry`, 2 x len(GEOMETRY_STEPS) + 1 more columns say where that object is and how big:
    thermometer bits "its centre's x > 8, 16, ..., 56 px", the same for y, then "it is large". A patch
    of a large object then tells where the whole object lies, not only where the patch is, and two
    objects' places compare by counting bits (left of: fewer x bits), a comparison the LLM must make
    to answer relations and positions from features it reads without their grid coordinates.

    With `relations`, len(RELATIONS) more columns (after the geometry ones) say how that object
    stands to the scene's others: "it is to the left of / to the right of / above / below another
    object" by the contract's rule. Whether a named object is left of the other is then one lookup
    of that object's patches instead of a comparison between two looked-up objects' places."""
    if patch <= 0 or IMAGE_SIZE % patch:
        raise ValueError(f"patch must divide the {IMAGE_SIZE} px image, got {patch}")
    grid = IMAGE_SIZE // patch
    kinds = len(COLORS) * len(SHAPES)
    first_relation = kinds + (2 * len(GEOMETRY_STEPS) + 1 if geometry else 0)
    columns = first_relation + (len(RELATIONS) if relations else 0)
    out = np.zeros((grid * grid, columns), dtype=np.float32)
    steps = np.array(GEOMETRY_STEPS, dtype=np.float32)
    for o in scene.objects:
        mask = np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=bool)
        mask[o.y:o.y + o.side, o.x:o.x + o.side] = shape_mask(o.shape, o.side)
        covered = mask.reshape(grid, patch, grid, patch).sum(axis=(1, 3)).reshape(-1) >= min_pixels
        out[covered, o.label] = 1.0
        if geometry:
            cx, cy = o.center
            where = np.concatenate([cx > steps, cy > steps, [o.size == "large"]]).astype(np.float32)
            out[covered, kinds:first_relation] = np.maximum(out[covered, kinds:first_relation], where)
        if relations:
            held = {r for other in scene.objects if other is not o for r in relations_between(o.center, other.center)}
            stands = np.array([r in held for r in RELATIONS], dtype=np.float32)
            out[covered, first_relation:] = np.maximum(out[covered, first_relation:], stands)
    return out


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
    _check_name(qtype, QUESTION_TYPES, "question type")
    objs = scene.objects
    if qtype == "color":
        options = [o for o in objs if _unique(scene, shape=o.shape)]
        if not options:
            return None
        o = _pick(rng, options)
        return QA(qtype, f"What color is the {o.shape}?", o.color, f"the {o.shape} is {o.color}")  # type: ignore[union-attr]
    if qtype == "shape":
        options = [o for o in objs if _unique(scene, color=o.color)]
        if not options:
            return None
        o = _pick(rng, options)
        return QA(qtype, f"What shape is the {o.color} object?", o.shape, f"the {o.color} object is a {o.shape}")  # type: ignore[union-attr]
    if qtype == "count":
        n = len(objs)
        said = "there is one shape" if n == 1 else f"there are {NUMBER_WORDS[n]} shapes"
        return QA(qtype, "How many shapes are there?", NUMBER_WORDS[n], said)
    if qtype == "position":
        if scene.kind != "single":
            return None
        o = objs[0]
        return QA(qtype, f"Where is the {o.name}?", o.position, f"the {o.name} is in the {o.position}")
    if qtype == "describe":
        return QA(qtype, "Describe the image.", scene.caption, scene.caption)
    yes = bool(rng.integers(2)) if yes is None else yes
    if qtype == "exists":
        present = sorted({(o.color, o.shape) for o in objs})
        absent = [(c, s) for c in COLORS for s in SHAPES if (c, s) not in present]
        color, shape = _pick(rng, present if yes else absent)  # type: ignore[misc]
        said = f"there is a {color} {shape}" if yes else f"there is no {color} {shape}"
        return QA(qtype, f"Is there a {color} {shape}?", "yes" if yes else "no", said)
    if scene.kind != "pair":  # relation
        return None
    a, b = objs if rng.integers(2) else objs[::-1]
    held = relations_between(a.center, b.center)
    if not yes and inverse > 0 and rng.random() < inverse:
        relation = INVERSE[held[0]]
    else:
        relation = _pick(rng, held if yes else [r for r in RELATIONS if r not in held])
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
    ("relation", re.compile(
        rf"is the ({_COLOR_RE}) ({_SHAPE_RE}) ({'|'.join(RELATIONS)}) the ({_COLOR_RE}) ({_SHAPE_RE})\?")),
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
