"""The shapes world: procedural 64x64 scenes of coloured circles, squares and triangles.

This module and `shapes.language` are the executable form of the contract in
`shared/shapes-world.md`. Here: palette, shapes, sizes, the 3x3 grid, seeded scene sampling,
exact rendering, canonical captions and the per-patch contents the understanding ViT learns;
`language` has the generation prompts, the phrases, questions and answers about a scene.
Everything is a deterministic function of a `numpy.random.Generator`, so a seed names a dataset.

    rng = np.random.default_rng(0)
    scene = sample_scene(rng)             # Scene(objects=(Obj(...), ...))
    image = render(scene)                 # 64x64 RGB PIL image
    scene.caption                         # 'a small red circle in the top left'

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


def check_name(value: str, allowed: Sequence[str], what: str) -> None:
    """Raise ValueError naming the allowed values where `value` is not one of them."""
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
        check_name(self.color, COLORS, "colour")
        check_name(self.shape, SHAPES, "shape")
        check_name(self.size, tuple(SIZES), "size")

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


def choose(rng: np.random.Generator, options: Sequence) -> object:  # type: ignore[type-arg]
    """One of `options`, uniformly (one draw of `rng`)."""
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
    color = color or choose(rng, COLORS)
    shape = shape or choose(rng, SHAPES)
    size = size or choose(rng, tuple(SIZES))
    position = position or choose(rng, POSITIONS)
    check_name(position, POSITIONS, "position")
    row, column = divmod(POSITIONS.index(position), 3)
    side = SIZES[size]  # type: ignore[index]
    x = choose(rng, _corners(side, column))
    y = choose(rng, _corners(side, row))
    return Scene((Obj(color, shape, size, x, y),))  # type: ignore[arg-type]


def _other(rng: np.random.Generator, than: tuple[Color, Shape] | None) -> tuple[Color, Shape]:
    """A uniformly drawn (colour, shape) other than `than`."""
    while True:
        drawn = (choose(rng, COLORS), choose(rng, SHAPES))
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
    relation = relation or choose(rng, RELATIONS)
    check_name(relation, RELATIONS, "relation")
    sa, sb = SIZES[choose(rng, tuple(SIZES))], SIZES[choose(rng, tuple(SIZES))]  # type: ignore[index]
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
    color = color or choose(rng, COLORS)
    shape = shape or choose(rng, SHAPES)
    coords = _corners(SIZES["small"], None)
    while True:
        objs: list[Obj] = []
        for _ in range(100):
            o = Obj(color, shape, "small", choose(rng, coords), choose(rng, coords))  # type: ignore[arg-type]
            if all(separated(o, p) for p in objs):
                objs.append(o)
                if len(objs) == n:
                    return Scene(tuple(objs))


def sample_scene(rng: np.random.Generator, kind: str | None = None, weights: Sequence[float] = KIND_WEIGHTS) -> Scene:
    """A random scene of `kind` (default: drawn with `weights` over single, pair, count)."""
    if kind is None:
        kind = KINDS[int(rng.choice(len(KINDS), p=np.asarray(weights, dtype=float) / sum(weights)))]
    check_name(kind, KINDS, "scene kind")
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


# ---------------------------------------------------------------- what the understanding ViT learns


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
