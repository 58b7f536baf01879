"""Where the bundled shapes-world model lives (inside the installed package)."""

from __future__ import annotations

from pathlib import Path

from januspro.errors import ModelNotFoundError

BUNDLED_DIR = Path(__file__).parent / "assets" / "shapes-model"


def bundled_model_path() -> Path:
    """The folder of the bundled model, or an error saying how to get one."""
    if not (BUNDLED_DIR / "config.json").is_file():
        raise ModelNotFoundError(
            "the bundled shapes-world model is not installed in this copy of januspro; "
            "pass --model PATH_OR_HUB_ID (or build it with `januspro train bundled`)"
        )
    return BUNDLED_DIR
