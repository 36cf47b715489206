"""Shape-only ("fake") implementations of the ops, for torch.compile and torch.library.opcheck.

Registered only where the installed torch has ``torch.library.register_fake`` (a feature test, not a
version pin): Debian's torch 1.13 has none and needs none.
"""
import torch


def register() -> bool:
    lib = getattr(torch, "library", None)
    register_fake = getattr(lib, "register_fake", None)
    if register_fake is None:
        return False

    def _acc(t):
        return torch.float64 if t.dtype == torch.float64 else torch.float32

    def _forward(image, text, temperature, image_to_text_weight):
        n = image.shape[0]
        acc = _acc(image)
        vec = lambda: image.new_empty((n,), dtype=acc)  # noqa: E731
        return image.new_empty((), dtype=acc), vec(), vec(), vec(), vec(), vec()

    def _backward(grad_loss, image, text, temperature, image_to_text_weight, row_lse, col_lse):
        return torch.empty_like(image), torch.empty_like(text), torch.empty_like(temperature)

    def _loss(image, text, temperature, image_to_text_weight=0.75, normalize=True, eps=1e-12,
              backend="auto"):
        acc = _acc(image)
        return tuple(image.new_empty((), dtype=acc) for _ in range(5))

    register_fake("convirt::infonce_forward", _forward)
    register_fake("convirt::infonce_fused", _forward)
    register_fake("convirt::infonce_backward", _backward)
    register_fake("convirt::infonce_loss", _loss)
    return True
