"""Shared fixtures: tiny random checkpoints written once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never touch the network
torch.set_num_threads(1)  # tiny models: threading overhead dominates on a busy 2-core machine

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference"


def pytest_collection_modifyitems(config, items):  # noqa: ANN001
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    if not REFERENCE.is_dir():
        pytest.skip(f"{REFERENCE} (the shared reference folder) is not available")
    return REFERENCE


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from januspro.testing import write_random_checkpoint

    return write_random_checkpoint(tmp_path_factory.mktemp("tiny") / "ckpt")


@pytest.fixture(scope="session")
def tiny_janus(tiny_checkpoint: Path):  # noqa: ANN201
    import januspro

    return januspro.load(tiny_checkpoint, device="cpu")


@pytest.fixture(scope="session")
def bundled_janus():  # noqa: ANN201
    """The bundled shapes-world model on the CPU, loaded once (tests read it; they patch only what they restore)."""
    import januspro

    return januspro.load(None, device="cpu")


@pytest.fixture()
def rgb_image() -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (40, 56, 3), dtype=np.uint8))
