"""Device and dtype choice, made once at the edge (CLI, server, `januspro.load`)."""

from __future__ import annotations

import torch

from januspro.errors import InputError

_DTYPES = {
    "float32": torch.float32, "fp32": torch.float32,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
    "float16": torch.float16, "fp16": torch.float16, "half": torch.float16,
}


def pick_device(requested: str | torch.device | None = None) -> torch.device:
    """The requested device, or the best available one: cuda, then mps, then cpu."""
    if requested is not None and str(requested) != "auto":
        try:
            device = torch.device(requested)
        except RuntimeError:
            raise InputError(f"unknown device {requested!r} (use cpu, cuda, cuda:N or mps)") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise InputError("device 'cuda' requested but CUDA is not available")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise InputError("device 'mps' requested but MPS is not available")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def pick_dtype(device: torch.device, requested: str | torch.dtype | None = None) -> torch.dtype:
    """The requested dtype, or bf16 on accelerators that support it and fp32 on CPU."""
    if isinstance(requested, torch.dtype):
        return requested
    if requested is not None and requested != "auto":
        try:
            return _DTYPES[requested.lower()]
        except KeyError:
            raise InputError(f"unknown dtype {requested!r} (use float32, bfloat16 or float16)") from None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.bfloat16 if torch.backends.mps.is_macos_or_newer(14, 0) else torch.float32
    return torch.float32


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")
