"""The vision probe: can the understanding ViT's patch features tell which objects a scene holds?

A small MLP, trained here on the frozen features of scenes from a training seed, predicts the
18 colour-shape labels of held-out scenes (which of red circle ... orange triangle are there).
It separates two limits of the answers: when the probe reads a pair's two objects, the features
carry them and what fails is how the LLM reads them; when it does not, the ViT is the limit.
(The shipped model of 2026-12-06 found both objects of a pair in 0.36 of held-out scenes after
its stage 4 had trained the ViT on with the LLM's losses, 0.77-0.88 right after the dense loss.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from januspro.shapes.dataset import iter_samples
from januspro.shapes.evaluate import EVAL_SEED, Progress
from januspro.shapes.world import COLORS, KINDS, SHAPES, Scene

if TYPE_CHECKING:
    from januspro.engine import Janus

PROBE_TRAIN_SEED = 501  # a training seed (0-999): the probe's own scenes, never the model's eval scenes


@dataclass(frozen=True)
class VisionProbe:
    train_scenes: int
    test_scenes: int
    exact: dict[str, float]  # kind (and "all") -> share of test scenes whose 18 labels all come out right
    present_recall: float  # share of the objects that are there that the probe finds
    absent_specificity: float  # share of the colour-shape labels that are not there that it rules out


def scene_labels(scene: Scene) -> torch.Tensor:
    """[18] 0/1: which colour-shape classes (`Obj.label`) the scene holds."""
    labels = torch.zeros(len(COLORS) * len(SHAPES))
    for o in scene.objects:
        labels[o.label] = 1.0
    return labels


@torch.no_grad()
def _features(janus: Janus, seed: int, n: int, batch_size: int = 500) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """-> features [n, patches * width] (fp32, on CPU), labels [n, 18], scene kinds."""
    samples = iter_samples(seed, stream=3, allow_held_out=True)
    vit = janus.model.vision_model
    was_training = vit.training
    vit.eval()
    features, labels, kinds = [], [], []
    try:
        for start in range(0, n, batch_size):
            chunk = [next(samples) for _ in range(min(batch_size, n - start))]
            pixels = janus.processor.image_processor([s.image for s in chunk])
            pixels = pixels.to(janus.device, next(vit.parameters()).dtype)
            features.append(vit(pixels).float().flatten(1).cpu())  # [b, patches * width]
            labels += [scene_labels(s.scene) for s in chunk]
            kinds += [s.scene.kind for s in chunk]
    finally:
        vit.train(was_training)
    return torch.cat(features), torch.stack(labels), kinds


def probe_vision(janus: Janus, seed: int = EVAL_SEED, train_scenes: int = 20000, test_scenes: int = 3000,
                 epochs: int = 30, hidden: int = 512, progress: Progress | None = None) -> VisionProbe:
    """Train the MLP probe on `train_scenes` scenes of `PROBE_TRAIN_SEED` and measure it on `test_scenes`
    scenes of `seed` (held out). Deterministic for the same arguments and model; about 40 s at the defaults
    on 2 CPU cores for the bundled model."""
    if train_scenes < 1 or test_scenes < 1 or epochs < 1:
        raise ValueError("train_scenes, test_scenes and epochs must be >= 1")
    x_train, y_train, _ = _features(janus, PROBE_TRAIN_SEED, train_scenes)
    x_test, y_test, kinds = _features(janus, seed, test_scenes)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = nn.Sequential(nn.Linear(x_train.shape[1], hidden), nn.GELU(), nn.Linear(hidden, y_train.shape[1]))
        optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=0.01)
        for epoch in range(epochs):
            for batch in torch.randperm(train_scenes).split(256):
                loss = F.binary_cross_entropy_with_logits(net(x_train[batch]), y_train[batch])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            if progress is not None:
                progress("vision probe", epoch + 1, epochs)
    with torch.no_grad():
        predicted = (net(x_test) > 0).float()  # [test, 18]
    right = (predicted == y_test).all(1)
    exact = {"all": float(right.float().mean())}
    for kind in KINDS:
        mask = torch.tensor([k == kind for k in kinds])
        if mask.any():
            exact[kind] = float(right[mask].float().mean())
    return VisionProbe(train_scenes, test_scenes, exact, float(predicted[y_test == 1].mean()),
                       float((1 - predicted[y_test == 0]).mean()))
