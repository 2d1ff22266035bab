"""IMAGE tensors both ways: layout, exact pixel values, and the rule for mixed sizes."""

from __future__ import annotations

import io

import pytest
import torch
from PIL import Image as PILImage

from nanobanana.comfyui.tensors import images_to_tensor, tensor_to_png_list


def png(size: tuple[int, int], color: tuple[int, ...], mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    PILImage.new(mode, size, color).save(buf, format="PNG")
    return buf.getvalue()


def test_layout_and_exact_values() -> None:
    t = images_to_tensor([png((5, 3), (255, 128, 0)), png((5, 3), (0, 64, 255))])
    assert t.dtype == torch.float32 and tuple(t.shape) == (2, 3, 5, 3)  # [B, H, W, C]
    assert torch.equal(t[0, 0, 0], torch.tensor([1.0, 128 / 255, 0.0]))
    assert torch.equal(t[1, 2, 4], torch.tensor([0.0, 64 / 255, 1.0]))


def test_round_trip_is_lossless() -> None:
    gen = torch.Generator().manual_seed(7)
    values = torch.randint(0, 256, (3, 6, 4, 3), generator=gen).to(torch.float32) / 255
    back = images_to_tensor(tensor_to_png_list(values))
    assert torch.equal(back, values)
    # A single [H, W, C] image, grey and RGBA tensors are accepted too.
    assert len(tensor_to_png_list(values[0])) == 1
    grey = PILImage.open(io.BytesIO(tensor_to_png_list(values[:1, :, :, :1])[0]))
    assert grey.mode == "L"
    rgba = PILImage.open(io.BytesIO(tensor_to_png_list(torch.ones(1, 2, 2, 4))[0]))
    assert rgba.mode == "RGBA"


def test_out_of_range_values_are_clamped() -> None:
    t = torch.tensor([[[[-0.5, 0.5, 1.7]]]])
    img = PILImage.open(io.BytesIO(tensor_to_png_list(t)[0]))
    assert img.getpixel((0, 0)) == (0, 128, 255)


def test_different_sizes_are_letterboxed_to_the_first() -> None:
    wide = png((40, 20), (200, 10, 10))  # sets the size: 40x20
    tall = png((10, 20), (10, 200, 10))  # fits as 10x20, centred with bars left and right
    small = png((20, 10), (10, 10, 200))  # scaled up to 40x20 exactly (same shape)
    t = images_to_tensor([wide, tall, small])
    assert tuple(t.shape) == (3, 20, 40, 3)
    assert torch.equal(t[0, 10, 20], torch.tensor([200, 10, 10]) / 255.0)
    assert torch.equal(t[1, :, :15], torch.zeros(20, 15, 3))  # left bar
    assert torch.equal(t[1, :, 25:], torch.zeros(20, 15, 3))  # right bar
    assert torch.allclose(t[1, 10, 20], torch.tensor([10, 200, 10]) / 255.0)
    assert torch.allclose(t[2, 10, 20], torch.tensor([10, 10, 200]) / 255.0, atol=1 / 255)
    assert t[2].min() > 0  # no bars: same proportions


def test_transparency_is_composited_on_black() -> None:
    t = images_to_tensor([png((2, 2), (255, 255, 255, 0), mode="RGBA")])
    assert tuple(t.shape) == (1, 2, 2, 3) and float(t.max()) == 0.0


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="no images"):
        images_to_tensor([])
    with pytest.raises(ValueError, match="IMAGE tensor"):
        tensor_to_png_list(torch.zeros(1, 2, 2, 5))


def test_images_too_large_for_a_request_are_sent_as_jpeg() -> None:
    noise = torch.rand(2, 64, 64, 3, generator=torch.Generator().manual_seed(1))
    flat = torch.full((1, 64, 64, 3), 0.5)
    big, small = tensor_to_png_list(torch.cat([noise[:1], flat]), max_bytes=8_000)
    assert big.startswith(b"\xff\xd8") and len(big) < len(tensor_to_png_list(noise[:1])[0])
    assert small.startswith(b"\x89PNG")
    decoded = images_to_tensor([big])
    assert tuple(decoded.shape) == (1, 64, 64, 3)
    # Lossy, but the same picture: per-channel means agree closely.
    assert torch.allclose(decoded.mean(dim=(0, 1, 2)), noise[0].mean(dim=(0, 1)), atol=0.02)
