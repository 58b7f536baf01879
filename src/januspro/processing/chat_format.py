"""The DeepSeek chat format used by Janus.

    {system}\\n\\n<|User|>: {question}\\n\\n<|Assistant|>: {answer}<｜end▁of▁sentence｜><|User|>: ...

Janus-Pro writes the roles `<|User|>` / `<|Assistant|>`, Janus-1.3B `User` / `Assistant`.
A message with images carries one `<image_placeholder>` per image, before the text unless the
text places them itself; the processor expands each placeholder to
`<begin_of_image>` + one image token per encoder feature + `<end_of_image>`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Sequence

from januspro.errors import InputError
from januspro.processing.tokenizer import EOS, IMAGE

Role = Literal["user", "assistant"]

# The system prompt the original processor puts in front of understanding prompts.
DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful language and vision assistant. "
    "You are able to understand the visual content that the user provides, "
    "and assist the user with a variety of tasks using natural language."
)


@dataclass(frozen=True)
class Message:
    """One turn. `images` are anything the image processor accepts (usually PIL images)."""

    role: Role
    text: str
    images: Sequence[object] = field(default_factory=tuple)

    def content(self) -> str:
        """Text with one placeholder per image (prepended unless the text has them already)."""
        placed = self.text.count(IMAGE)
        if placed == 0:
            return "".join(f"{IMAGE}\n" for _ in self.images) + self.text
        if placed != len(self.images):
            raise InputError(f"the message places {placed} image placeholders but has {len(self.images)} images")
        return self.text


@dataclass(frozen=True)
class ChatFormat:
    name: str
    user: str
    assistant: str
    sep: str = "\n\n"
    end_of_turn: str = EOS

    def render(self, messages: Sequence[Message], system: str | None = None, add_generation_prompt: bool = True) -> str:
        """The prompt text of a conversation, ending with the assistant cue when asked."""
        out = f"{system}{self.sep}" if system else ""
        for message in messages:
            role = self.user if message.role == "user" else self.assistant
            content = message.content().strip()
            out += f"{role}: {content}" + (self.sep if message.role == "user" else self.end_of_turn)
        if add_generation_prompt:
            out += f"{self.assistant}:"
        return out.strip()

    def next_turn(self, message: Message) -> str:
        """Text that continues a conversation whose last turn was the assistant's (KV-cached
        chat sessions append this instead of re-rendering the whole history)."""
        return f"{self.user}: {message.content().strip()}{self.sep}{self.assistant}:"


JANUS_PRO = ChatFormat("janus-pro", "<|User|>", "<|Assistant|>")
JANUS = ChatFormat("janus", "User", "Assistant")
FORMATS = {f.name: f for f in (JANUS_PRO, JANUS)}


def chat_format(name: str) -> ChatFormat:
    try:
        return FORMATS[name]
    except KeyError:
        raise InputError(f"unknown chat format {name!r} (choose from {', '.join(FORMATS)})") from None
