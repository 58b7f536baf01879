"""LlamaGen VQ tokenizer (`VQ-16`): the generation pathway's image <-> codes converter.

Encoder (conv stem, residual levels with stride-2 downsampling, attention at the lowest level,
mid block) -> 1x1 `quant_conv` to the codebook dimension (8) -> l2-normalised nearest-neighbour
quantiser over 16384 codes -> 1x1 `post_quant_conv` -> mirror-image decoder. With
`ch_mult=(1, 1, 2, 2, 4)` the downsampling factor is 16, so a 384 px image is 24 x 24 = 576
codes. Names follow the original module tree so official checkpoints load unchanged.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from januspro.config import VQConfig

WHITE_LEVEL = 0.99  # in [-1, 1]: 254/255 and brighter count as white


def swish(x: torch.Tensor) -> torch.Tensor:
    """x * sigmoid(x); in place when no gradient is being recorded (decoding 384 px images
    holds several 128-channel full-resolution maps: one fewer temporary matters)."""
    return F.silu(x, inplace=not torch.is_grad_enabled())


class ResnetBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, groups: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, in_channels, eps=1e-6)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = nn.GroupNorm(groups, out_channels, eps=1e-6)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.nin_shortcut = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(swish(self.norm1(x)))
        h = self.conv2(swish(self.norm2(h)))
        if self.nin_shortcut is not None:
            x = self.nin_shortcut(x)
        return x + h


class AttnBlock(nn.Module):
    """Single-head spatial self-attention with 1x1-conv projections."""

    def __init__(self, channels: int, groups: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels, eps=1e-6)
        self.q = nn.Conv2d(channels, channels, 1)
        self.k = nn.Conv2d(channels, channels, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        normed = self.norm(x)
        # [B, C, H, W] -> [B, 1, HW, C] for one attention head of width C (scale C^-1/2).
        q, k, v = (proj(normed).reshape(b, 1, c, h * w).transpose(-1, -2) for proj in (self.q, self.k, self.v))
        out = F.scaled_dot_product_attention(q, k, v)  # [B, 1, HW, C]
        return x + self.proj_out(out.transpose(-1, -2).reshape(b, c, h, w))


class Downsample(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))  # asymmetric pad, as the original


class Upsample(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Nearest-neighbour upsampling in float32 (bf16 interpolate is unsupported on some backends).
        x = F.interpolate(x.float(), scale_factor=2.0, mode="nearest").to(x.dtype)
        return self.conv(x)


class Level(nn.Module):
    """One resolution level: residual blocks, attention after each (lowest level only), resampler."""

    def __init__(self, block_in: int, block_out: int, n_blocks: int, attn: bool, groups: int) -> None:
        super().__init__()
        self.res = nn.ModuleList()
        self.attn = nn.ModuleList()
        for _ in range(n_blocks):
            self.res.append(ResnetBlock(block_in, block_out, groups))
            block_in = block_out
            if attn:
                self.attn.append(AttnBlock(block_out, groups))

    def run_blocks(self, x: torch.Tensor) -> torch.Tensor:
        for i, res in enumerate(self.res):
            x = res(x)
            if len(self.attn) > 0:
                x = self.attn[i](x)
        return x


def _mid_block(channels: int, groups: int) -> nn.ModuleList:
    return nn.ModuleList([ResnetBlock(channels, channels, groups), AttnBlock(channels, groups),
                          ResnetBlock(channels, channels, groups)])


class Encoder(nn.Module):
    def __init__(self, config: VQConfig) -> None:
        super().__init__()
        ch, mult, groups = config.ch, config.ch_mult, config.norm_groups
        self.conv_in = nn.Conv2d(3, ch, 3, padding=1)
        self.conv_blocks = nn.ModuleList()
        in_mult = (1,) + tuple(mult)
        last = len(mult) - 1
        for level in range(len(mult)):
            block = Level(ch * in_mult[level], ch * mult[level], config.num_res_blocks, level == last, groups)
            if level != last:
                block.downsample = Downsample(ch * mult[level])
            self.conv_blocks.append(block)
        block_in = ch * mult[-1]
        self.mid = _mid_block(block_in, groups)
        self.norm_out = nn.GroupNorm(groups, block_in, eps=1e-6)
        self.conv_out = nn.Conv2d(block_in, config.z_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] in [-1, 1] -> [B, z_channels, H/f, W/f]"""
        h = self.conv_in(x)
        for level, block in enumerate(self.conv_blocks):
            h = block.run_blocks(h)
            if level != len(self.conv_blocks) - 1:
                h = block.downsample(h)
        for module in self.mid:
            h = module(h)
        return self.conv_out(swish(self.norm_out(h)))


class Decoder(nn.Module):
    def __init__(self, config: VQConfig) -> None:
        super().__init__()
        ch, mult, groups = config.ch, config.ch_mult, config.norm_groups
        block_in = ch * mult[-1]
        self.conv_in = nn.Conv2d(config.z_channels, block_in, 3, padding=1)
        self.mid = _mid_block(block_in, groups)
        # conv_blocks[0] is the lowest resolution (highest level), as in the original.
        self.conv_blocks = nn.ModuleList()
        last = len(mult) - 1
        for level in reversed(range(len(mult))):
            block = Level(block_in, ch * mult[level], config.num_res_blocks + 1, level == last, groups)
            block_in = ch * mult[level]
            if level != 0:
                block.upsample = Upsample(block_in)
            self.conv_blocks.append(block)
        self.norm_out = nn.GroupNorm(groups, block_in, eps=1e-6)
        self.conv_out = nn.Conv2d(block_in, 3, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """[B, z_channels, h, w] -> [B, 3, h*f, w*f] (roughly [-1, 1])"""
        h = self.conv_in(z)
        for module in self.mid:
            h = module(h)
        for index, block in enumerate(self.conv_blocks):
            h = block.run_blocks(h)
            if index != len(self.conv_blocks) - 1:
                h = block.upsample(h)
        return self.conv_out(swish(self.norm_out(h)))


class Quantized(NamedTuple):
    """Output of the quantiser. The losses are zero tensors when not training."""

    z_q: torch.Tensor  # [B, D, h, w] straight-through quantised latents
    codes: torch.Tensor  # [B, h*w] int64 code indices
    codebook_loss: torch.Tensor  # || sg(z) - e ||^2: moves codes towards encoder outputs
    commitment_loss: torch.Tensor  # || z - sg(e) ||^2: keeps the encoder near its codes (times beta)


def blank_patches(pixels: torch.Tensor, patch: int) -> torch.Tensor:
    """[B, 3, H, W] pixels in [-1, 1] -> [B, (H/patch)*(W/patch)] bool: is every pixel of the patch white."""
    lowest = pixels.amin(dim=1)  # [B, H, W] darkest channel
    b, height, width = lowest.shape
    tiles = lowest.reshape(b, height // patch, patch, width // patch, patch).amin(dim=(2, 4))  # [B, h, w]
    return (tiles >= WHITE_LEVEL).flatten(1)


class VectorQuantizer(nn.Module):
    def __init__(self, config: VQConfig, beta: float = 0.25) -> None:
        super().__init__()
        self.l2_norm = config.codebook_l2_norm
        self.beta = beta
        self.embedding = nn.Embedding(config.codebook_size, config.codebook_embed_dim)
        if config.codebook_show_usage:
            # Present in official checkpoints (usage statistics of training); unused here.
            self.register_buffer("codebook_used", torch.zeros(65536))

    def codebook(self) -> torch.Tensor:
        weight = self.embedding.weight
        return F.normalize(weight, dim=-1) if self.l2_norm else weight

    def forward(self, z: torch.Tensor, reserved: torch.Tensor | None = None) -> Quantized:
        """Nearest codes of `z` [B, D, h, w]; `reserved` [R] codes are never chosen."""
        b, d, h, w = z.shape
        z = z.permute(0, 2, 3, 1)  # [B, h, w, D]
        if self.l2_norm:
            z = F.normalize(z, dim=-1)
        codebook = self.codebook()  # [K, D]
        flat = z.reshape(-1, d)
        # Squared distances ||z||^2 + ||e||^2 - 2 z.e, [B*h*w, K]
        dist = flat.pow(2).sum(1, keepdim=True) + codebook.pow(2).sum(1) - 2 * flat @ codebook.t()
        if reserved is not None:
            dist[:, reserved] = float("inf")
        codes = dist.argmin(dim=1)
        z_q = codebook[codes].view(b, h, w, d)
        if self.training:
            codebook_loss = (z_q - z.detach()).pow(2).mean()
            commitment_loss = self.beta * (z_q.detach() - z).pow(2).mean()
        else:
            codebook_loss = commitment_loss = z.new_zeros(())
        z_q = z + (z_q - z).detach()  # straight-through estimator
        return Quantized(z_q.permute(0, 3, 1, 2), codes.view(b, h * w), codebook_loss, commitment_loss)

    def lookup(self, codes: torch.Tensor, grid: int) -> torch.Tensor:
        """[B, grid*grid] codes -> [B, D, grid, grid] quantised latents."""
        z_q = self.codebook()[codes]  # [B, N, D]
        return z_q.view(codes.shape[0], grid, grid, -1).permute(0, 3, 1, 2).contiguous()


class VQModel(nn.Module):
    """The whole tokenizer (official name: `gen_vision_model`)."""

    def __init__(self, config: VQConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        self.quantize = VectorQuantizer(config)
        self.quant_conv = nn.Conv2d(config.z_channels, config.codebook_embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(config.codebook_embed_dim, config.z_channels, 1)

    def encode(self, pixels: torch.Tensor) -> Quantized:
        """[B, 3, H, W] in [-1, 1] -> quantised latents and codes.

        With `config.blank_patch_codes`, a patch that is pure white everywhere takes its grid
        position's blank code (latent and code), and no other patch takes one of those codes."""
        z = self.quant_conv(self.encoder(pixels))
        if not self.config.blank_patch_codes:
            return self.quantize(z)
        blank_codes = torch.tensor(self.config.blank_patch_codes, device=z.device)  # [N]
        quantized = self.quantize(z, reserved=blank_codes)
        blank = blank_patches(pixels, self.config.downsample)  # [B, N]
        codes = torch.where(blank, blank_codes, quantized.codes)
        b, _, h, w = quantized.z_q.shape
        blank_latents = self.quantize.lookup(blank_codes[None], h).to(quantized.z_q.dtype)  # [1, D, h, w]
        z_q = torch.where(blank.view(b, 1, h, w), blank_latents, quantized.z_q)
        return quantized._replace(z_q=z_q, codes=codes)

    def decode(self, z_q: torch.Tensor) -> torch.Tensor:
        """[B, D, h, w] quantised latents -> [B, 3, H, W] pixels, roughly in [-1, 1]."""
        return self.decoder(self.post_quant_conv(z_q))

    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """[B, N] codes (N = grid^2) -> [B, 3, H, W] pixels, roughly in [-1, 1]."""
        grid = self.config.grid_size
        if codes.shape[-1] != grid * grid:
            raise ValueError(f"expected {grid * grid} codes per image, got {codes.shape[-1]}")
        z_q = self.quantize.lookup(codes, grid).to(self.post_quant_conv.weight.dtype)
        return self.decode(z_q)

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, Quantized]:
        """Reconstruct: [B, 3, H, W] -> ([B, 3, H, W], quantiser output with losses)."""
        quantized = self.encode(pixels)
        return self.decode(quantized.z_q), quantized
