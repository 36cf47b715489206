"""The paper's image augmentation as callables on tensors (``t_v`` of ConVIRT, paper section 4).

Each transform is a thin Python object over a native C++ transform: it takes ``[C, H, W]`` or
``[B, C, H, W]`` CPU tensors (float, or uint8 scaled to [0, 1]) and returns float32. The work runs in
C++ with the GIL released; a batch is transformed in parallel, with the same result whatever the
thread count.

Randomness, three ways:

* ``t(img)``: a 63-bit seed is drawn from torch's default generator (or ``generator=``), so
  ``torch.manual_seed`` makes a run reproducible and each DataLoader worker, which torch seeds
  differently, gets its own stream, exactly as with torchvision transforms.
* ``t(img, seed=s)``: a pure function of ``s``; use ``seed=hash((epoch, index))`` for augmentation
  that does not depend on the number of workers.
* ``t(img, rng=r)`` with a :class:`Rng`: draws from (and advances) a stream you own.

Transforms pickle by their options, so they work in DataLoader workers started with ``spawn`` too.

Example::

    import convirt.transforms as T
    aug = T.paper_augmentation()                 # crop 224, flip, affine, jitter, blur
    view = aug(convirt.image.read_image("cxr.jpg", channels=1))   # [1, 224, 224]
    views = aug(batch_bchw, seed=step)           # [B, 1, 224, 224], deterministic

The functional ops are in :mod:`convirt.image`, also reachable as ``convirt.transforms.functional``.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch

from . import image as functional
from ._C import image as _image
from .image import Rng, _interpolation

__all__ = [
    "Rng", "Transform", "Resize", "RandomResizedCrop", "RandomHorizontalFlip", "RandomAffine",
    "ColorJitter", "GaussianBlur", "Normalize", "PadToSquare", "ResizeLongerSide", "EvalPreprocess",
    "Compose", "paper_augmentation", "eval_transform", "functional",
]

Range = Tuple[float, float]
_SEED_LIMIT = 2 ** 64


def _range(value: Any, name: str) -> Range:
    try:
        lo, hi = value
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a (low, high) pair, got {value!r}") from None
    return float(lo), float(hi)


def _pair_size(size: Union[int, Sequence[int]], name: str) -> Tuple[int, int]:
    if isinstance(size, bool):
        raise TypeError(f"{name} must be an int or a (height, width) pair, got bool")
    if isinstance(size, int):
        return size, size
    size = tuple(int(s) for s in size)
    if len(size) == 1:
        return size[0], size[0]
    if len(size) != 2:
        raise ValueError(f"{name} must be an int or a (height, width) pair, got {size}")
    return size  # type: ignore[return-value]


def _draw_seed(generator: Optional[torch.Generator]) -> int:
    return int(torch.randint(0, 2 ** 63 - 1, (1,), generator=generator).item())


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int):
        if isinstance(seed, torch.Tensor) and seed.numel() == 1 and not seed.is_floating_point():
            seed = int(seed.item())
        else:
            raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if not 0 <= seed < _SEED_LIMIT:
        raise ValueError(f"seed must be in [0, 2**64), got {seed}")
    return seed


def _check_image(image: Any, who: str) -> torch.Tensor:
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"{who}: image must be a torch.Tensor [C, H, W] or [B, C, H, W], got "
                        f"{type(image).__name__} (decode files with convirt.image.read_image)")
    return image


class Transform:
    """Base of the convirt transforms: ``t(image, seed=None, *, rng=None, generator=None)``.

    Subclasses set ``self._args`` (the constructor's options, which is what pickling stores) and
    implement ``_build()``, returning the native transform.
    """

    _args: Dict[str, Any]

    def __init__(self, **args: Any) -> None:
        self._args = args
        self._native = self._build()

    def _build(self) -> Any:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    @property
    def native(self) -> Any:
        """The ``convirt._C.image`` transform that does the work."""
        return self._native

    def __call__(self, image: torch.Tensor, seed: Optional[int] = None, *, rng: Optional[Rng] = None,
                 generator: Optional[torch.Generator] = None) -> torch.Tensor:
        image = _check_image(image, type(self).__name__)
        if rng is not None:
            if seed is not None:
                raise ValueError(f"{type(self).__name__}: pass seed or rng, not both")
            if not isinstance(rng, Rng):
                raise TypeError(f"rng must be a convirt.transforms.Rng, got {type(rng).__name__}")
            return self._native(image, rng)
        seed = _draw_seed(generator) if seed is None else _check_seed(seed)
        return self._native(image, seed)

    def __getstate__(self) -> Dict[str, Any]:
        return {"args": self._args}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self._args = state["args"]
        self._native = self._build()

    def __repr__(self) -> str:
        return repr(self._native)


class Resize(Transform):
    """Deterministic resize; antialiased bilinear by default.

    ``size`` as torchvision: a (height, width) pair, or an int that the smaller edge is resized to
    (aspect ratio kept). Only the pair form can join a native :class:`Compose` chain, since the
    output size of the int form depends on the input.
    """

    def __init__(self, size: Union[int, Sequence[int]], interpolation: Any = "bilinear",
                 antialias: bool = True) -> None:
        if isinstance(size, int) and not isinstance(size, bool):
            if size <= 0:
                raise ValueError(f"Resize: size must be > 0, got {size}")
            super().__init__(size=size, interpolation=_interpolation(interpolation), antialias=bool(antialias))
        else:
            h, w = _pair_size(size, "size")
            super().__init__(height=h, width=w, interpolation=_interpolation(interpolation),
                             antialias=bool(antialias))

    def _build(self) -> Any:
        if "size" in self._args:
            return None
        return _image.Resize(**self._args)

    def __call__(self, image: torch.Tensor, seed: Optional[int] = None, *, rng: Optional[Rng] = None,
                 generator: Optional[torch.Generator] = None) -> torch.Tensor:
        if self._native is not None:
            return super().__call__(image, seed, rng=rng, generator=generator)
        image = _check_image(image, "Resize")
        return functional.resize(image, self._args["size"], self._args["interpolation"], self._args["antialias"])

    def __repr__(self) -> str:
        if self._native is not None:
            return repr(self._native)
        return f"Resize(size={self._args['size']}, interpolation={self._args['interpolation']})"


class RandomResizedCrop(Transform):
    """torchvision's RandomResizedCrop algorithm; the paper's crop is ``scale=(0.6, 1.0)`` (default)."""

    def __init__(self, size: Union[int, Sequence[int]] = 224, scale: Range = (0.6, 1.0),
                 ratio: Range = (3.0 / 4.0, 4.0 / 3.0), interpolation: Any = "bilinear",
                 antialias: bool = True) -> None:
        h, w = _pair_size(size, "size")
        super().__init__(height=h, width=w, scale=_range(scale, "scale"), ratio=_range(ratio, "ratio"),
                         interpolation=_interpolation(interpolation), antialias=bool(antialias))

    def _build(self) -> Any:
        return _image.RandomResizedCrop(**self._args)

    def sample(self, height: int, width: int, rng: Rng) -> Tuple[int, int, int, int]:
        """The window (top, left, height, width) this transform would crop, drawn from ``rng``."""
        return self._native.sample(int(height), int(width), rng)


class RandomHorizontalFlip(Transform):
    """Mirrors left-right with probability ``p`` (one draw per image whatever ``p``)."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__(p=float(p))

    def _build(self) -> Any:
        return _image.RandomHorizontalFlip(**self._args)


class RandomAffine(Transform):
    """Rotation in [-degrees, degrees], translation up to ``translate`` of W/H, scale in ``scale``.

    Defaults are the paper's (20, (0.1, 0.1), (0.95, 1.05)); bilinear sampling by default.
    """

    def __init__(self, degrees: float = 20.0, translate: Range = (0.1, 0.1), scale: Range = (0.95, 1.05),
                 interpolation: Any = "bilinear", fill: float = 0.0) -> None:
        super().__init__(degrees=float(degrees), translate=_range(translate, "translate"),
                         scale=_range(scale, "scale"), interpolation=_interpolation(interpolation),
                         fill=float(fill))

    def _build(self) -> Any:
        return _image.RandomAffine(**self._args)

    def sample(self, height: int, width: int, rng: Rng) -> Tuple[float, Tuple[float, float], float]:
        """The parameters (angle, (tx, ty), scale) this transform would apply, drawn from ``rng``."""
        return self._native.sample(int(height), int(width), rng)


class ColorJitter(Transform):
    """Brightness and contrast factors drawn from the given ranges (paper: both (0.6, 1.4))."""

    def __init__(self, brightness: Range = (0.6, 1.4), contrast: Range = (0.6, 1.4),
                 random_order: bool = True) -> None:
        super().__init__(brightness=_range(brightness, "brightness"), contrast=_range(contrast, "contrast"),
                         random_order=bool(random_order))

    def _build(self) -> Any:
        return _image.ColorJitter(**self._args)


class GaussianBlur(Transform):
    """Blur with sigma drawn from ``sigma`` (paper: (0.1, 3.0)); ``kernel_size=0`` derives it from sigma."""

    def __init__(self, sigma: Range = (0.1, 3.0), kernel_size: int = 0) -> None:
        super().__init__(sigma=_range(sigma, "sigma"), kernel_size=int(kernel_size))

    def _build(self) -> Any:
        return _image.GaussianBlur(**self._args)


class Normalize(Transform):
    """``(x - mean[c]) / std[c]``."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__(mean=[float(m) for m in mean], std=[float(s) for s in std])

    def _build(self) -> Any:
        return _image.Normalize(**self._args)


class _Functional(Transform):
    """A deterministic transform implemented by a functional op (no native class, no randomness)."""

    def _build(self) -> Any:
        return None

    def _apply(self, image: torch.Tensor) -> torch.Tensor:  # pragma: no cover - overridden
        raise NotImplementedError

    def __call__(self, image: torch.Tensor, seed: Optional[int] = None, *, rng: Optional[Rng] = None,
                 generator: Optional[torch.Generator] = None) -> torch.Tensor:
        if seed is not None:
            _check_seed(seed)
        return self._apply(_check_image(image, type(self).__name__))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._args.items())
        return f"{type(self).__name__}({args})"


class PadToSquare(_Functional):
    """Zero-pads (or pads with ``fill``) to a square, centred."""

    def __init__(self, fill: float = 0.0) -> None:
        super().__init__(fill=float(fill))

    def _apply(self, image: torch.Tensor) -> torch.Tensor:
        return functional.pad_to_square(image, self._args["fill"])


class ResizeLongerSide(_Functional):
    """Resizes so the longer side is ``longer_side`` (the paper stores pretraining images at 256)."""

    def __init__(self, longer_side: int = 256) -> None:
        super().__init__(longer_side=int(longer_side))

    def _apply(self, image: torch.Tensor) -> torch.Tensor:
        return functional.resize_longer_side(image, self._args["longer_side"])


class EvalPreprocess(_Functional):
    """The paper's evaluation preprocessing: pad to square with zeros, resize to ``size``."""

    def __init__(self, size: int = 224) -> None:
        super().__init__(size=int(size))

    def _apply(self, image: torch.Tensor) -> torch.Tensor:
        return functional.eval_preprocess(image, self._args["size"])


class Compose(Transform):
    """Applies transforms in order.

    When every item is a native convirt transform the chain runs as one native Compose (one Rng
    stream through all steps, batches in parallel). Any other callable (a torchvision transform, a
    lambda) is accepted too and called as ``f(image)``; the convirt items then draw, in order, from
    one :class:`Rng` seeded from ``seed``, and a batch goes through each step as a whole.
    """

    def __init__(self, transforms: Sequence[Callable[..., torch.Tensor]]) -> None:
        transforms = list(transforms)
        for i, t in enumerate(transforms):
            if not callable(t):
                raise TypeError(f"Compose: transform {i} is not callable ({type(t).__name__})")
        super().__init__(transforms=transforms)

    @property
    def transforms(self) -> List[Callable[..., torch.Tensor]]:
        return self._args["transforms"]

    def _is_native(self) -> bool:
        return all(isinstance(t, Transform) and t.native is not None for t in self.transforms)

    def _build(self) -> Any:
        if not self._is_native():
            return None
        return _image.Compose([t.native for t in self.transforms])

    def __call__(self, image: torch.Tensor, seed: Optional[int] = None, *, rng: Optional[Rng] = None,
                 generator: Optional[torch.Generator] = None) -> torch.Tensor:
        if self._native is not None:
            return super().__call__(image, seed, rng=rng, generator=generator)
        image = _check_image(image, "Compose")
        if rng is None:
            rng = Rng(_draw_seed(generator) if seed is None else _check_seed(seed))
        elif seed is not None:
            raise ValueError("Compose: pass seed or rng, not both")
        for t in self.transforms:
            image = t(image, rng=rng) if isinstance(t, Transform) else t(image)
        return image

    def __len__(self) -> int:
        return len(self.transforms)

    def __getitem__(self, index: int) -> Callable[..., torch.Tensor]:
        return self.transforms[index]

    def __repr__(self) -> str:
        return "Compose(" + ", ".join(repr(t) for t in self.transforms) + ")"


def paper_augmentation(size: int = 224, crop_scale: Range = (0.6, 1.0),
                       crop_ratio: Range = (3.0 / 4.0, 4.0 / 3.0), flip_p: float = 0.5,
                       degrees: float = 20.0, translate: Range = (0.1, 0.1),
                       affine_scale: Range = (0.95, 1.05), interpolation: Any = "bilinear",
                       brightness: Range = (0.6, 1.4), contrast: Range = (0.6, 1.4),
                       sigma: Range = (0.1, 3.0), kernel_size: int = 0) -> Compose:
    """The paper's t_v in its order: RandomResizedCrop(size, crop_scale) -> RandomHorizontalFlip(flip_p)
    -> RandomAffine(degrees, translate, affine_scale) -> ColorJitter(brightness, contrast) ->
    GaussianBlur(sigma). The same pixels as C++ ``convirt::image::paper_augmentation`` for the same seed.

    Example::

        aug = convirt.transforms.paper_augmentation(size=224)
        view = aug(image, seed=1234)
    """
    return Compose([
        RandomResizedCrop(size, scale=crop_scale, ratio=crop_ratio),
        RandomHorizontalFlip(flip_p),
        RandomAffine(degrees, translate, affine_scale, interpolation=interpolation),
        ColorJitter(brightness, contrast),
        GaussianBlur(sigma, kernel_size),
    ])


def eval_transform(size: int = 224, mean: Optional[Sequence[float]] = None,
                   std: Optional[Sequence[float]] = None) -> Compose:
    """The classifier-side preprocessing: pad to square, resize to ``size``, optionally normalise."""
    steps: List[Callable[..., torch.Tensor]] = [EvalPreprocess(size)]
    if mean is not None or std is not None:
        if mean is None or std is None:
            raise ValueError("eval_transform: give both mean and std, or neither")
        steps.append(Normalize(mean, std))
    return Compose(steps)
