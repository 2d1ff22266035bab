"""ComfyUI IMAGE tensors <-> encoded images.

ComfyUI's IMAGE is a float32 tensor ``[batch, height, width, channels]`` with values in 0..1
and three (RGB) channels.  One tensor holds one size, so images of different sizes in one batch
follow a fixed rule: **the first image sets the size; every other image is scaled to fit inside
it, keeping its proportions, centred, and the rest filled with black** (letterbox).  Nothing is
cropped or stretched, and a batch of same-sized images is left untouched.

This module imports torch; the node pack imports it only when a node runs.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

__all__ = ["fit_to", "images_to_tensor", "tensor_to_png_list"]

JPEG_QUALITY = 95
#: Fill colour of letterbox bars (RGB).
PAD_COLOR = (0, 0, 0)


def _pil() -> Any:
    from PIL import Image as PILModule

    return PILModule


def fit_to(img: PILImage, size: tuple[int, int]) -> PILImage:
    """Scale ``img`` to fit inside ``size`` keeping proportions; centre it on black bars."""
    pil = _pil()
    width, height = size
    if img.size == size:
        return img
    scale = min(width / img.width, height / img.height)
    new = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    resized = img.resize(new, pil.Resampling.LANCZOS)
    canvas = pil.new("RGB", size, PAD_COLOR)
    canvas.paste(resized, ((width - new[0]) // 2, (height - new[1]) // 2))
    return canvas


def images_to_tensor(images: Sequence[bytes | PILImage]) -> torch.Tensor:
    """Encoded images (or PIL images) -> one IMAGE tensor, letterboxed to the first's size."""
    if not images:
        raise ValueError("no images to convert")
    pil = _pil()
    decoded = []
    for item in images:
        img = pil.open(io.BytesIO(item)) if isinstance(item, bytes | bytearray) else item
        img.load()
        decoded.append(_rgb(img))
    size = decoded[0].size
    arrays = [np.asarray(fit_to(img, size), dtype=np.uint8) for img in decoded]
    batch = torch.from_numpy(np.stack(arrays))
    return batch.to(torch.float32).div_(255.0)


def _rgb(img: PILImage) -> PILImage:
    """RGB, with transparency composited on black as ComfyUI's own loader drops alpha."""
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        canvas = _pil().new("RGB", rgba.size, PAD_COLOR)
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return img.convert("RGB")


def tensor_to_png_list(tensor: torch.Tensor, *, max_bytes: int | None = None) -> list[bytes]:
    """An IMAGE tensor (``[B,H,W,C]`` or one ``[H,W,C]`` image) -> one PNG per image.

    With ``max_bytes``, an image whose PNG is larger (a big photo) is sent as a JPEG (quality
    95) instead, so it stays under the providers' inline limit."""
    if tensor.ndim == 3:
        tensor = tensor.unsqueeze(0)
    if tensor.ndim != 4 or tensor.shape[-1] not in (1, 3, 4):
        raise ValueError(
            f"expected an IMAGE tensor [batch, height, width, 1|3|4], got {tuple(tensor.shape)}"
        )
    pil = _pil()
    data = (tensor.detach().to("cpu", torch.float32).clamp(0.0, 1.0) * 255.0).round()
    arrays = data.to(torch.uint8).numpy()
    out = []
    for arr in arrays:
        # uint8 [H,W] -> L, [H,W,3] -> RGB, [H,W,4] -> RGBA (Pillow infers the mode).
        img = pil.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr)
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        if max_bytes is not None and buf.tell() > max_bytes:
            buf = io.BytesIO()
            # 4:4:4 (no chroma subsampling): a reference keeps its colour edges.
            img.convert("RGB").save(buf, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
        out.append(buf.getvalue())
    return out
