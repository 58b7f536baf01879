"""What every command-line adapter shares: argument types with one-line messages, the model
options, loading the model they name, and the check that a port is free before a server starts.

Imported by `januspro.cli` on every invocation: nothing heavy (no torch) at module level.
"""

from __future__ import annotations

import argparse
import logging
import socket
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from januspro.engine import Janus


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None


def non_negative_float(text: str) -> float:
    value = _number(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def probability(text: str) -> float:
    value = _number(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def port(text: str) -> int:
    value = positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"must be a port number (1-65535), got {value}")
    return value


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """--model, --device, --dtype, --quantize, --compile, --chat-format (what `load_from_args` reads)."""
    group = parser.add_argument_group("model")
    group.add_argument("--model", "-m", default=None, metavar="PATH_OR_ID",
                       help="checkpoint folder or Hugging Face hub id (default: the bundled shapes-world model)")
    group.add_argument("--device", default=None, help="cpu, cuda, cuda:N or mps (default: best available)")
    group.add_argument("--dtype", default=None, help="float32, bfloat16 or float16 (default: bf16 on GPUs, fp32 on CPU)")
    group.add_argument("--quantize", default=None, choices=["int8"],
                       help="int8 weight-only LLM layers: half the memory, faster memory-bound decoding")
    group.add_argument("--compile", action="store_true",
                       help="torch.compile the decode steps on GPUs (fused kernels, CUDA graphs on top; the first "
                            "request of each batch size compiles for a minute or more; CPUs decode eagerly)")
    group.add_argument("--chat-format", default=None, choices=["janus-pro", "janus"],
                       help="prompt roles: <|User|>/<|Assistant|> (janus-pro) or User/Assistant (janus-1.3b); default from the checkpoint")


def load_from_args(args: argparse.Namespace) -> Janus:
    """The model that `add_model_arguments`' options name."""
    from januspro.engine import load

    janus = load(args.model, device=args.device, dtype=args.dtype, chat_format=args.chat_format, quantize=args.quantize,
                 compile=args.compile)
    logging.getLogger("januspro").info("model %s on %s (%s%s)", janus.name, janus.device, janus.dtype,
                                       ", compiled decode steps" if janus.compile else "")
    return janus


def check_port_free(host: str, port_number: int) -> None:
    """Fail with one line before the model loads, not with a traceback after it."""
    from januspro.errors import JanusError

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port_number, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        raise JanusError(f"cannot listen on {host}:{port_number}: {exc.strerror}") from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise JanusError(f"cannot listen on {host}:{port_number}: {exc.strerror or exc}") from None
