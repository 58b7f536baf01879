"""januspro: DeepSeek's Janus / Janus-Pro unified multimodal models in plain PyTorch.

    import januspro
    janus = januspro.load()                      # the bundled shapes-world model
    janus = januspro.load("deepseek-ai/Janus-Pro-1B")
    print(janus.chat("Describe the image.", images=["scene.png"]).text)
    result = janus.generate_images("a red circle", januspro.ImageOptions(n=4, seed=1))
"""

from januspro.config import JanusConfig
from januspro.engine import ChatOptions, ChatResult, ChatSession, ImageOptions, ImageResult, Janus, load
from januspro.errors import CheckpointError, ConfigError, InputError, JanusError, ModelNotFoundError
from januspro.models.janus import JanusModel
from januspro.processing.chat_format import Message

__version__ = "0.1.0"

__all__ = [
    "load", "Janus", "JanusModel", "JanusConfig", "Message",
    "ChatOptions", "ChatResult", "ChatSession", "ImageOptions", "ImageResult",
    "JanusError", "ConfigError", "CheckpointError", "ModelNotFoundError", "InputError",
]
