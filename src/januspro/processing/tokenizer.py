"""Text tokenizer: `tokenizer.json` through the `tokenizers` library, plus the special tokens
that Janus relies on, read from `tokenizer_config.json` / `special_tokens_map.json`.

BOS is added explicitly (LlamaTokenizerFast's `add_bos_token`, on by default) rather than
trusting the post-processor in tokenizer.json, so that the ids are the same whichever way the
file was exported.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from januspro.errors import CheckpointError

BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"
PAD = "<｜▁pad▁｜>"
IMAGE = "<image_placeholder>"
BOI = "<begin_of_image>"
EOI = "<end_of_image>"


def _token_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return value["content"]
    return None


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: not valid JSON ({exc})") from None
    return data if isinstance(data, dict) else {}


@dataclass(frozen=True)
class SpecialTokens:
    bos: int
    eos: int
    pad: int
    image: int  # <image_placeholder>: one per image feature in understanding prompts
    boi: int  # <begin_of_image>
    eoi: int  # <end_of_image>


class TextTokenizer:
    """Encode/decode text with the checkpoint's tokenizer and know Janus' special ids."""

    def __init__(self, backend: Any, *, bos: str = BOS, eos: str = EOS, pad: str | None = PAD,
                 add_bos: bool = True, max_length: int | None = None) -> None:
        self.backend = backend
        self.add_bos = add_bos
        self.max_length = max_length
        pad_id = backend.token_to_id(pad) if pad else None
        self.special = SpecialTokens(
            bos=self._require(bos, "BOS"),
            eos=self._require(eos, "EOS"),
            pad=pad_id if pad_id is not None else self._require(eos, "EOS"),
            image=self._require(IMAGE, "image placeholder"),
            boi=self._require(BOI, "begin-of-image"),
            eoi=self._require(EOI, "end-of-image"),
        )

    def _require(self, token: str, what: str) -> int:
        token_id = self.backend.token_to_id(token)
        if token_id is None:
            raise CheckpointError(f"the tokenizer has no {what} token {token!r}")
        return token_id

    @classmethod
    def from_folder(cls, folder: str | Path) -> "TextTokenizer":
        from tokenizers import Tokenizer

        folder = Path(folder)
        path = folder / "tokenizer.json"
        if not path.is_file():
            raise CheckpointError(f"{folder}: tokenizer.json is missing")
        try:
            backend = Tokenizer.from_file(str(path))
        except Exception as exc:
            raise CheckpointError(f"{path}: cannot read the tokenizer ({exc})") from None
        config = _read_json(folder / "tokenizer_config.json")
        special = _read_json(folder / "special_tokens_map.json")

        def pick(key: str, default: str | None) -> str | None:
            return _token_text(config.get(key)) or _token_text(special.get(key)) or default

        pad = pick("pad_token", None)
        if backend.token_to_id(PAD) is not None:
            pad = PAD  # the original processor pads with this tag whatever the config says
        max_length = config.get("model_max_length")
        return cls(
            backend,
            bos=pick("bos_token", BOS) or BOS,
            eos=pick("eos_token", EOS) or EOS,
            pad=pad,
            add_bos=bool(config.get("add_bos_token", True)),
            max_length=max_length if isinstance(max_length, int) and max_length < 10**9 else None,
        )

    @property
    def vocab_size(self) -> int:
        return self.backend.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str, add_bos: bool | None = None) -> list[int]:
        ids = self.backend.encode(text, add_special_tokens=False).ids
        if self.add_bos if add_bos is None else add_bos:
            ids = [self.special.bos] + ids
        return ids

    def decode(self, ids: Iterable[int], skip_special: bool = True) -> str:
        return self.backend.decode(list(ids), skip_special_tokens=skip_special)

    def token_to_id(self, token: str) -> int | None:
        return self.backend.token_to_id(token)

    def has_token(self, token: str) -> bool:
        return self.backend.token_to_id(token) is not None

    def save(self, folder: Path) -> None:
        """Write tokenizer.json and the two small config files the loader reads."""
        folder.mkdir(parents=True, exist_ok=True)
        self.backend.save(str(folder / "tokenizer.json"))
        names = {
            "bos_token": self.backend.id_to_token(self.special.bos),
            "eos_token": self.backend.id_to_token(self.special.eos),
            "pad_token": self.backend.id_to_token(self.special.pad),
        }
        config = {"add_bos_token": self.add_bos, "tokenizer_class": "LlamaTokenizerFast", **names}
        if self.max_length:
            config["model_max_length"] = self.max_length
        (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        special = {**names, "additional_special_tokens": [IMAGE, BOI, EOI]}
        (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
