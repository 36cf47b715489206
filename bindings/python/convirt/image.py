"""Image decoding, encoding and the functional image ops of convirt (``convirt._C.image``).

Decoding picks the codec from the content (JPEG, PNG, DICOM), never from the file name, and returns a
``[C, H, W]`` tensor (float32 in [0, 1] by default). The functional ops take ``[C, H, W]`` or
``[B, C, H, W]`` CPU tensors, float or uint8 (uint8 is scaled to [0, 1] first), and return contiguous
float32; each matches the torchvision tensor op of the same name (see docs/image.md). They are data
pipeline ops: they do not record autograd history. Every call releases the GIL.

Example::

    import convirt.image as ci
    x = ci.read_image("cxr.jpg", channels=1)          # [1, H, W] float32
    x = ci.resize_longer_side(x, 256)                   # the paper's stored size
    y = ci.affine(x, angle=10.0, translate=(4, -2), scale=1.02)
"""
from __future__ import annotations

import os
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import torch

from ._C import image as _image

__all__ = [
    "read_image", "decode_image", "image_info", "detect_format", "codec_available",
    "write_png", "write_jpeg", "encode_png", "encode_jpeg", "write_dicom",
    "resize", "resized_crop", "hflip", "affine", "adjust_brightness", "adjust_contrast",
    "gaussian_kernel_size", "gaussian_blur", "pad_to_square", "normalize",
    "resize_longer_side", "pretrain_preprocess", "eval_preprocess", "Rng",
]

#: The seeded generator the transforms draw from (xoshiro256**; picklable, state() / set_state()).
Rng = _image.Rng

PathLike = Union[str, "os.PathLike[str]"]
Size = Union[int, Sequence[int]]


def _interpolation(mode: Any) -> str:
    """'bilinear' / 'nearest' from a string or a torchvision ``InterpolationMode``."""
    value = getattr(mode, "value", mode)
    if not isinstance(value, str):
        raise TypeError(f"interpolation must be 'bilinear', 'nearest' or a torchvision InterpolationMode, "
                        f"got {type(mode).__name__}")
    return value.lower()


def _dtype(dtype: Any) -> str:
    if dtype is torch.float32 or dtype == "float32":
        return "float32"
    if dtype is torch.uint8 or dtype == "uint8":
        return "uint8"
    raise TypeError(f"dtype must be torch.float32 or torch.uint8, got {dtype}")


def _path(path: PathLike) -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    return os.fspath(path)


def _bytes(data: Any) -> bytes:
    if isinstance(data, torch.Tensor):
        if data.dtype != torch.uint8 or data.dim() != 1:
            raise TypeError(f"data must be a 1-D uint8 tensor, got {data.dtype} with shape {list(data.shape)}")
        return data.contiguous().cpu().numpy().tobytes()
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"data must be bytes, bytearray, memoryview or a 1-D uint8 tensor, got {type(data).__name__}")


def _size(size: Size, height: int, width: int, fn: str) -> Tuple[int, int]:
    """torchvision's rule: an int matches the smaller edge (aspect kept), a pair is (h, w)."""
    if isinstance(size, bool):
        raise TypeError(f"{fn}: size must be an int or a (height, width) pair, got bool")
    if isinstance(size, int):
        short, long = (height, width) if height <= width else (width, height)
        new_short, new_long = size, int(size * long / short)
        return (new_short, new_long) if height <= width else (new_long, new_short)
    size = tuple(size)
    if len(size) == 1:
        return _size(int(size[0]), height, width, fn)
    if len(size) != 2:
        raise ValueError(f"{fn}: size must be an int or a (height, width) pair, got {size}")
    return int(size[0]), int(size[1])


def _read_kwargs(channels: int, dtype: Any, draft_longer_side: int, dicom_intensity: str,
                 window: Optional[Tuple[float, float]], invert_monochrome1: bool) -> Dict[str, Any]:
    center, width = (0.0, 0.0) if window is None else (float(window[0]), float(window[1]))
    return dict(channels=int(channels), dtype=_dtype(dtype), draft_longer_side=int(draft_longer_side),
                dicom_intensity=dicom_intensity, window_center=center, window_width=width,
                invert_monochrome1=bool(invert_monochrome1))


def read_image(path: PathLike, *, channels: int = 0, dtype: torch.dtype = torch.float32,
               draft_longer_side: int = 0, dicom_intensity: str = "window",
               window: Optional[Tuple[float, float]] = None, invert_monochrome1: bool = True) -> torch.Tensor:
    """Decodes a JPEG, PNG or DICOM file into ``[C, H, W]``.

    Args:
        path: the file; its format is detected from the content.
        channels: 0 keeps the file's (gray 1, colour 3), 1 converts to gray (PIL's ``convert("L")``),
            3 replicates gray.
        dtype: ``torch.float32`` (values in [0, 1]) or ``torch.uint8``.
        draft_longer_side: JPEG only, decode at a DCT scale whose longer side is still >= this (0: full).
        dicom_intensity: 'window' (the given or the file's VOI window, else min-max), 'minmax' or
            'bit_depth'.
        window: explicit DICOM (center, width) in modality units.
        invert_monochrome1: make MONOCHROME1 DICOMs brighter-is-higher.

    Raises:
        ValueError / RuntimeError naming the path and the reason (missing, truncated, not an image).

    Example::

        x = convirt.image.read_image("p10/s1/view1.jpg", channels=1)  # [1, H, W]
    """
    return _image.read_image(_path(path), **_read_kwargs(channels, dtype, draft_longer_side,
                                                         dicom_intensity, window, invert_monochrome1))


def decode_image(data: Union[bytes, bytearray, memoryview, torch.Tensor], *, channels: int = 0,
                 dtype: torch.dtype = torch.float32, draft_longer_side: int = 0,
                 dicom_intensity: str = "window", window: Optional[Tuple[float, float]] = None,
                 invert_monochrome1: bool = True) -> torch.Tensor:
    """Decodes an encoded image held in memory (bytes or a 1-D uint8 tensor); see :func:`read_image`."""
    return _image.decode_image(_bytes(data), **_read_kwargs(channels, dtype, draft_longer_side,
                                                            dicom_intensity, window, invert_monochrome1))


def image_info(path: PathLike) -> Dict[str, Any]:
    """``{'format', 'width', 'height', 'channels', 'bit_depth'}`` from the header, without decoding pixels."""
    return _image.image_info(_path(path))


def detect_format(data: Union[bytes, bytearray, memoryview, torch.Tensor]) -> str:
    """'jpeg', 'png', 'dicom' or 'unknown', from the magic bytes."""
    return _image.detect_format(_bytes(data))


def codec_available(format: str) -> bool:
    """Whether this build decodes 'jpeg', 'png' or 'dicom' (DICOM needs DCMTK at build time)."""
    return _image.codec_available(format)


def write_png(path: PathLike, image: torch.Tensor, bit_depth: int = 8) -> None:
    """Writes ``[C, H, W]`` (C = 1, 3, 4) or ``[H, W]``: float in [0, 1] (rounded) or uint8; 8 or 16 bit."""
    _image.write_png(_path(path), image, int(bit_depth))


def write_jpeg(path: PathLike, image: torch.Tensor, quality: int = 95) -> None:
    """Writes a baseline JPEG (C = 1 or 3; RGB with 4:2:0 chroma subsampling)."""
    _image.write_jpeg(_path(path), image, int(quality))


def encode_png(image: torch.Tensor, bit_depth: int = 8) -> bytes:
    """The PNG bytes :func:`write_png` would write."""
    return _image.encode_png(image, int(bit_depth))


def encode_jpeg(image: torch.Tensor, quality: int = 95) -> bytes:
    """The JPEG bytes :func:`write_jpeg` would write."""
    return _image.encode_jpeg(image, int(quality))


def write_dicom(path: PathLike, pixels: torch.Tensor, *, photometric: str = "MONOCHROME2",
                bits_stored: int = 16, rescale_slope: float = 1.0, rescale_intercept: float = 0.0,
                window: Optional[Tuple[float, float]] = None, patient_id: str = "", modality: str = "CR",
                view_position: str = "") -> None:
    """Writes an uncompressed grayscale DICOM from integer stored values ``[H, W]`` or ``[1, H, W]``."""
    center, width = (0.0, 0.0) if window is None else (float(window[0]), float(window[1]))
    _image.write_dicom(_path(path), pixels, photometric=photometric, bits_stored=int(bits_stored),
                       rescale_slope=float(rescale_slope), rescale_intercept=float(rescale_intercept),
                       window_center=center, window_width=width, patient_id=patient_id,
                       modality=modality, view_position=view_position)


# ---------------------------------------------------------------------------------------------------
# Functional ops: same names and argument order as torchvision.transforms.functional where it has the op.

def resize(image: torch.Tensor, size: Size, interpolation: Any = "bilinear", antialias: bool = True) -> torch.Tensor:
    """Resizes to ``size`` ((h, w), or an int for the smaller edge as torchvision does).

    Bilinear with ``antialias=True`` equals ``F.resize(t, size, BILINEAR, antialias=True)`` and PIL's
    ``resize(BILINEAR)``; ``antialias=False`` equals ``interpolate(mode='bilinear', align_corners=False)``.

    Example::

        small = convirt.image.resize(x, (224, 224))
    """
    h, w = _size(size, image.shape[-2], image.shape[-1], "resize")
    return _image.resize(image, h, w, _interpolation(interpolation), bool(antialias))


def resized_crop(image: torch.Tensor, top: int, left: int, height: int, width: int, size: Size,
                 interpolation: Any = "bilinear", antialias: bool = True) -> torch.Tensor:
    """Crops (top, left, height, width), which must lie inside the image, and resizes it in one pass."""
    oh, ow = _size(size, int(height), int(width), "resized_crop")
    return _image.resized_crop(image, int(top), int(left), int(height), int(width), oh, ow,
                               _interpolation(interpolation), bool(antialias))


def hflip(image: torch.Tensor) -> torch.Tensor:
    """Mirrors left-right."""
    return _image.hflip(image)


def affine(image: torch.Tensor, angle: float, translate: Sequence[float], scale: float,
           interpolation: Any = "bilinear", fill: float = 0.0) -> torch.Tensor:
    """Rotation (degrees, torchvision's sign), translation (pixels) and scale about the centre.

    Equals ``F.affine(t, angle, translate, scale, shear=0, interpolation)`` on tensors.
    """
    tx, ty = translate
    return _image.affine(image, float(angle), (float(tx), float(ty)), float(scale),
                         _interpolation(interpolation), float(fill))


def adjust_brightness(image: torch.Tensor, brightness_factor: float) -> torch.Tensor:
    """``clamp(f * x, 0, 1)``, as torchvision."""
    return _image.adjust_brightness(image, float(brightness_factor))


def adjust_contrast(image: torch.Tensor, contrast_factor: float) -> torch.Tensor:
    """``clamp(f * x + (1 - f) * mean(gray(x)), 0, 1)`` per image, as torchvision."""
    return _image.adjust_contrast(image, float(contrast_factor))


def gaussian_kernel_size(sigma: float) -> int:
    """The kernel size used when none is given: ``max(3, 2 * ceil(3 * sigma) + 1)``."""
    return _image.gaussian_kernel_size(float(sigma))


def gaussian_blur(image: torch.Tensor, sigma: float, kernel_size: int = 0) -> torch.Tensor:
    """Separable Gaussian blur with reflect padding; ``kernel_size=0`` derives it from sigma.

    Note the argument order (sigma first, kernel size optional), unlike torchvision's
    ``gaussian_blur(img, kernel_size, sigma)``, which it otherwise equals.
    """
    return _image.gaussian_blur(image, float(sigma), int(kernel_size))


def pad_to_square(image: torch.Tensor, fill: float = 0.0) -> torch.Tensor:
    """Centres the image on a square of ``fill`` (an odd extra pixel goes right / bottom)."""
    return _image.pad_to_square(image, float(fill))


def normalize(image: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``(x - mean[c]) / std[c]``; one value applies to every channel."""
    return _image.normalize(image, [float(m) for m in mean], [float(s) for s in std])


def resize_longer_side(image: torch.Tensor, longer_side: int = 256, interpolation: Any = "bilinear",
                       antialias: bool = True) -> torch.Tensor:
    """Resizes so that the longer side is ``longer_side``, keeping the aspect ratio."""
    return _image.resize_longer_side(image, int(longer_side), _interpolation(interpolation), bool(antialias))


def pretrain_preprocess(image: torch.Tensor, longer_side: int = 256) -> torch.Tensor:
    """The paper's stored pretraining size: longer side 256."""
    return _image.pretrain_preprocess(image, int(longer_side))


def eval_preprocess(image: torch.Tensor, size: int = 224) -> torch.Tensor:
    """The paper's evaluation preprocessing: zero-pad to a square, resize to ``size`` x ``size``."""
    return _image.eval_preprocess(image, int(size))
