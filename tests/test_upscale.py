"""Upscaler: Real-ESRGAN's RRDBNet key/shape compatibility, weight loading, tiling, Lanczos fallback."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from januspro.errors import CheckpointError, InputError
from januspro.upscale import (
    ENV_VAR,
    RRDBNet,
    RRDBNetSpec,
    find_weights,
    infer_spec,
    load_rrdbnet,
    run_rrdbnet,
    upscale_images,
    weights_summary,
)

SMALL = dict(num_feat=8, num_block=1, num_grow_ch=4)  # fast, same key pattern as the released files


def _write(path: Path, spec: RRDBNetSpec, wrapper: str | None = "params_ema", seed: int = 0) -> Path:
    torch.manual_seed(seed)
    state = RRDBNet(spec).state_dict()
    torch.save({wrapper: state} if wrapper else state, path)
    return path


@pytest.fixture()
def image() -> Image.Image:
    rng = np.random.default_rng(1)
    return Image.fromarray(rng.integers(0, 255, (13, 18, 3), dtype=np.uint8))  # odd side: x2 needs padding


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)


# ----------------------------------------------------------------------- architecture


def _released_keys() -> list[tuple[str, tuple[int, ...]]]:
    """Keys and shapes of RealESRGAN_x4plus.pth's `params_ema`, written out from BasicSR's
    rrdbnet_arch.py naming (num_feat 64, num_block 23, num_grow_ch 32)."""
    keys = [("conv_first", (64, 3, 3, 3))]
    for block in range(23):
        for rdb in (1, 2, 3):
            for conv, (cin, cout) in enumerate([(64, 32), (96, 32), (128, 32), (160, 32), (192, 64)], start=1):
                keys.append((f"body.{block}.rdb{rdb}.conv{conv}", (cout, cin, 3, 3)))
    keys += [(name, (64, 64, 3, 3)) for name in ("conv_body", "conv_up1", "conv_up2", "conv_hr")]
    keys.append(("conv_last", (3, 64, 3, 3)))
    out = []
    for name, shape in keys:
        out += [(f"{name}.weight", shape), (f"{name}.bias", (shape[0],))]
    return out


@pytest.mark.parametrize("scale, in_channels", [(4, 3), (2, 12)])
def test_full_size_keys_and_shapes_match_released_files(scale: int, in_channels: int) -> None:
    expected = _released_keys()
    expected[0] = ("conv_first.weight", (64, in_channels, 3, 3))
    with torch.device("meta"):
        state = RRDBNet(RRDBNetSpec(scale=scale)).state_dict()
    assert [(k, tuple(v.shape)) for k, v in state.items()] == expected
    assert len(state) == 702
    if scale == 4:  # RealESRGAN_x4plus' published parameter count
        assert sum(v.numel() for v in state.values()) == 16_697_987


def test_infer_spec_reads_the_architecture_from_shapes() -> None:
    with torch.device("meta"):
        x2 = RRDBNet(RRDBNetSpec(scale=2)).state_dict()
        anime = RRDBNet(RRDBNetSpec(scale=4, num_block=6)).state_dict()
    assert infer_spec(x2) == RRDBNetSpec(scale=2)
    assert infer_spec(anime) == RRDBNetSpec(scale=4, num_block=6)


# ----------------------------------------------------------------------- loading and running


@pytest.mark.parametrize("scale, wrapper", [(4, "params_ema"), (2, "params_ema"), (2, "params"), (4, None)])
def test_load_and_upscale_with_random_weights(tmp_path: Path, image: Image.Image, scale: int, wrapper: str | None) -> None:
    path = _write(tmp_path / f"RealESRGAN_x{scale}.pth", RRDBNetSpec(scale=scale, **SMALL), wrapper)
    net = load_rrdbnet(path)
    assert net.spec == RRDBNetSpec(scale=scale, **SMALL)
    out, method = upscale_images([image, image.convert("L")], scale, weights=path)
    assert [im.size for im in out] == [(18 * scale, 13 * scale)] * 2
    assert all(im.mode == "RGB" for im in out)
    assert method == f"Real-ESRGAN x{scale} ({path})"
    # The network, not a resampling filter, made the pixels.
    assert np.abs(np.asarray(out[0], np.int16) - np.asarray(image.resize(out[0].size, Image.LANCZOS), np.int16)).mean() > 5


def test_loaded_weights_are_the_written_ones(tmp_path: Path) -> None:
    spec = RRDBNetSpec(scale=2, **SMALL)
    path = _write(tmp_path / "w.pth", spec, seed=3)
    torch.manual_seed(3)
    reference = RRDBNet(spec).eval()
    x = torch.rand(1, 3, 8, 10)
    torch.testing.assert_close(load_rrdbnet(path)(x), reference(x))


def test_tiles_give_the_same_image_as_one_pass(tmp_path: Path) -> None:
    spec = RRDBNetSpec(scale=2, **SMALL)
    net = load_rrdbnet(_write(tmp_path / "w.pth", spec))
    rng = np.random.default_rng(2)
    big = Image.fromarray(rng.integers(0, 255, (41, 70, 3), dtype=np.uint8))
    whole = np.asarray(run_rrdbnet(net, big, tile=1024), np.int16)
    # 1 block: the receptive field is well inside 24 pixels of padding, so tiles are exact.
    tiled = np.asarray(run_rrdbnet(net, big, tile=16, tile_pad=24), np.int16)
    assert whole.shape == (82, 140, 3)
    assert np.abs(whole - tiled).max() <= 1


def test_safetensors_file(tmp_path: Path, image: Image.Image) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "RealESRGAN_x4plus.safetensors"
    save_file(RRDBNet(RRDBNetSpec(scale=4, **SMALL)).state_dict(), str(path))
    out, method = upscale_images([image], 4, weights=path)
    assert out[0].size == (72, 52) and method.startswith("Real-ESRGAN x4")


# ----------------------------------------------------------------------- choosing weights


def test_without_weights_lanczos_and_says_so(image: Image.Image) -> None:
    out, method = upscale_images([image], 2)
    assert out[0].size == (36, 26)
    assert np.array_equal(np.asarray(out[0]), np.asarray(image.resize((36, 26), Image.LANCZOS)))
    assert method.startswith("Lanczos resampling") and ENV_VAR in method and "--upscale-weights" in method


def test_environment_folder_picks_the_file_for_each_factor(tmp_path: Path, image: Image.Image,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    x2 = _write(tmp_path / "RealESRGAN_x2plus.pth", RRDBNetSpec(scale=2, **SMALL))
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert find_weights(2) == x2
    assert find_weights(4) is None  # a 2x network cannot serve 4x
    out, method = upscale_images([image], 4)
    assert out[0].size == (72, 52) and method == f"Lanczos resampling (no RealESRGAN_x4plus.pth in {tmp_path.resolve()})"
    x4 = _write(tmp_path / "RealESRGAN_x4plus.pth", RRDBNetSpec(scale=4, **SMALL))
    assert find_weights(4) == x4 and find_weights(2) == x2
    summary = weights_summary()
    assert summary[2].startswith("Real-ESRGAN x2") and summary[4].startswith("Real-ESRGAN x4")


def test_4x_weights_serve_2x_by_downsizing(tmp_path: Path, image: Image.Image) -> None:
    path = _write(tmp_path / "RealESRGAN_x4plus.pth", RRDBNetSpec(scale=4, **SMALL))
    assert find_weights(2, tmp_path) == path
    out, method = upscale_images([image], 2, weights=path)
    assert out[0].size == (36, 26)
    assert method == f"Real-ESRGAN x4 ({path}), resized to 2x with Lanczos"


def test_2x_weights_for_4x_fall_back_to_lanczos(tmp_path: Path, image: Image.Image) -> None:
    path = _write(tmp_path / "RealESRGAN_x2plus.pth", RRDBNetSpec(scale=2, **SMALL))
    out, method = upscale_images([image], 4, weights=path)
    assert out[0].size == (72, 52)
    assert method.startswith("Lanczos resampling") and "2x model" in method


def test_alpha_is_kept(tmp_path: Path) -> None:
    path = _write(tmp_path / "w.pth", RRDBNetSpec(scale=2, **SMALL))
    rgba = Image.new("RGBA", (6, 4), (255, 0, 0, 128))
    out, _ = upscale_images([rgba], 2, weights=path)
    assert out[0].mode == "RGBA" and out[0].getpixel((3, 3))[3] == 128


# ----------------------------------------------------------------------- clear errors


def test_missing_path_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(CheckpointError, match="no such file"):
        upscale_images([Image.new("RGB", (4, 4))], 2, weights=tmp_path / "nope.pth")
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "missing"))
    with pytest.raises(CheckpointError, match=ENV_VAR):
        find_weights(2)


def test_bad_factor() -> None:
    with pytest.raises(InputError, match="2, 4"):
        upscale_images([Image.new("RGB", (4, 4))], 3)


def test_corrupt_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "RealESRGAN_x2.pth"
    path.write_bytes(b"this is not a checkpoint" * 10)
    with pytest.raises(CheckpointError, match=re.escape(f"{path}: not a readable weight file")):
        load_rrdbnet(path)


def test_mismatched_file_names_the_keys(tmp_path: Path) -> None:
    spec = RRDBNetSpec(scale=4, **SMALL)
    state = RRDBNet(spec).state_dict()
    state.pop("conv_hr.weight")
    state["conv_up1.weight"] = torch.zeros(8, 8, 1, 1)
    state["extra.weight"] = torch.zeros(1)
    torch.save({"params_ema": state}, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError) as info:
        load_rrdbnet(tmp_path / "bad.pth")
    message = str(info.value)
    assert "missing: conv_hr.weight" in message
    assert "unexpected: extra.weight" in message
    assert "wrong shape: conv_up1.weight (8, 8, 1, 1) (expected (8, 8, 3, 3))" in message


def test_other_networks_are_refused(tmp_path: Path) -> None:
    torch.save({"params_ema": {"model.0.weight": torch.zeros(64, 3, 3, 3)}}, tmp_path / "esrgan.pth")
    with pytest.raises(CheckpointError, match="old ESRGAN layout"):
        load_rrdbnet(tmp_path / "esrgan.pth")
    torch.save({"params": {"encoder.weight": torch.zeros(2, 2)}}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="not a Real-ESRGAN RRDBNet state dict"):
        load_rrdbnet(tmp_path / "other.pth")
    state = RRDBNet(RRDBNetSpec(scale=4, **SMALL)).state_dict()
    state["conv_first.weight"] = torch.zeros(8, 5, 3, 3)
    torch.save(state, tmp_path / "odd.pth")
    with pytest.raises(CheckpointError, match="conv_first takes 5 channels"):
        load_rrdbnet(tmp_path / "odd.pth")
