"""januspro: DeepSeek's Janus / Janus-Pro unified multimodal models in plain PyTorch.

    import januspro
    janus = januspro.load()                      # the bundled shapes-world model
    janus = januspro.load("deepseek-ai/Janus-Pro-1B")
    print(janus.chat("Describe the image.", images=["scene.png"]).text)
    result = janus.generate_images("a red circle", januspro.ImageOptions(n=4, seed=1))

Names are imported on first use, so that `import januspro` (and `januspro --help`) does not
pay for importing torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "load": "januspro.engine", "Janus": "januspro.engine", "ChatOptions": "januspro.engine",
    "ChatResult": "januspro.engine", "ChatSession": "januspro.engine", "ImageOptions": "januspro.engine",
    "ImageResult": "januspro.engine", "JanusModel": "januspro.models.janus", "JanusConfig": "januspro.config",
    "Message": "januspro.processing.chat_format", "JanusError": "januspro.errors", "ConfigError": "januspro.errors",
    "CheckpointError": "januspro.errors", "ModelNotFoundError": "januspro.errors", "InputError": "januspro.errors",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from januspro.config import JanusConfig
    from januspro.engine import ChatOptions, ChatResult, ChatSession, ImageOptions, ImageResult, Janus, load
    from januspro.errors import CheckpointError, ConfigError, InputError, JanusError, ModelNotFoundError
    from januspro.models.janus import JanusModel
    from januspro.processing.chat_format import Message


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'januspro' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
