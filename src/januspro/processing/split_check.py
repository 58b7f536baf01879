"""`SplitCheck`: what an image fitting a prompt shows on either side of a line.

A checkpoint's caption grammar gives them per prompt (`JanusProcessor.ranking_split_checks`), and the
self-verified ranking asks them of each sample (`scoring.split_scores`): a question the model answers well
about a part of an image (is there a red circle, how many shapes) stands in for one it answers badly about
the whole (which way round a relation goes, a fourth small object).
"""

from __future__ import annotations

from dataclasses import dataclass

AXES = ("x", "y")


@dataclass(frozen=True)
class SplitCheck:
    """Some line across one of `axes` ("x": a vertical line, the part before it the left; "y": a horizontal
    one, the part before it the top) has the part before it (the rest painted white) answer `before`, and the
    part after it answer `after`, with one of the `answers` pairs (before, after). Each answer is read among
    `choices`, all the answers the questions may get, by its first token.

        SplitCheck(("x",), "Is there a red circle?", "Is there a blue square?")   # a red circle left of ...
        SplitCheck(("x", "y"), "How many shapes are there?", "How many shapes are there?",
                   (("one", "two"), ("two", "one")), ("one", "two", "three"))       # three shapes
    """

    axes: tuple[str, ...]
    before: str
    after: str
    answers: tuple[tuple[str, str], ...] = (("yes", "yes"),)
    choices: tuple[str, ...] = ("yes", "no")

    def __post_init__(self) -> None:
        if not self.axes or any(axis not in AXES for axis in self.axes) or len(set(self.axes)) != len(self.axes):
            raise ValueError(f"a split check's axes must be distinct ones of 'x' and 'y', got {self.axes!r}")
        if not self.before.strip() or not self.after.strip():
            raise ValueError("a split check's questions must not be empty")
        if len(set(self.choices)) != len(self.choices) or len(self.choices) < 2:
            raise ValueError(f"a split check needs two or more distinct choices, got {self.choices!r}")
        if not self.answers or any(a not in self.choices for pair in self.answers for a in pair):
            raise ValueError(f"a split check's answers {self.answers!r} must be pairs of its choices {self.choices!r}")
