"""The bidirectional InfoNCE loss of ConVIRT, through the dispatcher op ``torch.ops.convirt.infonce_loss``.

C++ (``convirt::infonce_loss``) and Python run the same registered op, so they share one code path:
argument checks, normalisation, and the reference / fused CPU / fused CUDA implementations.
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple, Union

import torch

from ._C import INFONCE_DEFAULTS as _DEFAULTS

__all__ = ["infonce_loss", "InfoNCELoss", "InfoNCEOutput"]


class InfoNCEOutput(NamedTuple):
    """The loss and what a training log wants to know about the batch."""

    loss: torch.Tensor  #: 0-dim, differentiable
    image_to_text: torch.Tensor  #: mean l_i(v->u), no gradient
    text_to_image: torch.Tensor  #: mean l_i(u->v), no gradient
    image_to_text_accuracy: torch.Tensor  #: fraction of images whose own report scores highest
    text_to_image_accuracy: torch.Tensor  #: fraction of reports whose own image scores highest


def _temperature_tensor(temperature: Union[float, torch.Tensor], image_emb: Any) -> torch.Tensor:
    if isinstance(temperature, torch.Tensor):
        return temperature
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
        raise TypeError(f"temperature must be a float or a 0-dim tensor, got {type(temperature).__name__}")
    tau = float(temperature)
    if isinstance(image_emb, torch.Tensor) and image_emb.is_floating_point() and image_emb.device.type != "cpu":
        # On a device the op does not read tau back (that would make every call wait for the device):
        # check the float here, and fill the tensor on the device rather than copy it from the host.
        if not tau > 0:
            raise ValueError(f"temperature must be > 0, got {tau:g}")
        acc = torch.float64 if image_emb.dtype == torch.float64 else torch.float32
        return torch.full((), tau, dtype=acc, device=image_emb.device)
    return torch.tensor(tau, dtype=torch.float64)


def infonce_loss(
    image_emb: torch.Tensor,
    text_emb: torch.Tensor,
    temperature: Union[float, torch.Tensor] = _DEFAULTS["temperature"],
    image_to_text_weight: float = _DEFAULTS["image_to_text_weight"],
    normalize: bool = True,
    eps: float = 1e-12,
    backend: str = "auto",
    return_stats: bool = False,
):
    """ConVIRT's loss L = mean_i [lambda l_i(v->u) + (1 - lambda) l_i(u->v)] (paper section 1).

    Args:
        image_emb: [N, D] image embeddings v (row i pairs with row i of ``text_emb``).
        text_emb: [N, D] text embeddings u.
        temperature: tau > 0, a float, or a 0-dim tensor that receives a gradient (learnable).
        image_to_text_weight: lambda in [0, 1], weight of the image->text direction.
        normalize: L2-normalise both embeddings first (cosine similarity). Default True.
        eps: norms are clamped below at eps, as ``torch.nn.functional.normalize`` does.
        backend: "auto" (fused where available), "reference" or "fused".
        return_stats: also return the directional losses and top-1 accuracies.

    Returns:
        The 0-dim loss (fp32 for fp32/fp16/bf16 inputs, fp64 for fp64), or an :class:`InfoNCEOutput`.

    Example::

        loss = convirt.infonce_loss(v, u, temperature=0.1, image_to_text_weight=0.75)
        loss.backward()
    """
    out = torch.ops.convirt.infonce_loss(
        image_emb, text_emb, _temperature_tensor(temperature, image_emb), float(image_to_text_weight),
        bool(normalize), float(eps), str(backend))
    if return_stats:
        return InfoNCEOutput(*out)
    return out[0]


class InfoNCELoss(torch.nn.Module):
    """Module form of :func:`infonce_loss`.

    With ``learnable_temperature=True`` the module learns ``log_temperature`` (an ``nn.Parameter``,
    initialised to ``log(temperature)``), as CLIP learns its logit scale in log space; ``temperature``
    is then ``exp(log_temperature)`` clamped to [``MIN_TEMPERATURE``, ``MAX_TEMPERATURE``] = [0.01,
    100] (CLIP clamps its logit scale 1/tau at 100). However large an optimiser step, tau stays
    positive and finite; beyond a bound the gradient of ``log_temperature`` is zero. Without it the
    temperature is a float64 buffer, exactly the value given.

    With ``group`` (a :class:`convirt.dist.DistributedContext` or a ``torch.distributed`` process
    group) the same module takes its negatives from every rank's batch
    (:func:`convirt.dist.infonce_loss_distributed`): one module either way, as open_clip's
    ``ClipLoss`` takes an optional rank and world size. Synchronise ``log_temperature``'s gradient
    like the model's.

    Example::

        criterion = convirt.InfoNCELoss(temperature=0.1, image_to_text_weight=0.75)
        loss = criterion(v, u)
        across_ranks = convirt.InfoNCELoss(group=convirt.dist.DistributedContext.from_environment())
    """

    #: Bounds of a learnable temperature (CLIP's logit-scale clamp of 100 is tau >= 0.01).
    MIN_TEMPERATURE = 0.01
    MAX_TEMPERATURE = 100.0

    def __init__(self, temperature: float = _DEFAULTS["temperature"],
                 image_to_text_weight: float = _DEFAULTS["image_to_text_weight"],
                 normalize: bool = True, eps: float = 1e-12, backend: str = "auto",
                 learnable_temperature: bool = False, group: Any = None):
        super().__init__()
        self.group = group
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if not 0.0 <= image_to_text_weight <= 1.0:
            raise ValueError(f"image_to_text_weight must be in [0, 1], got {image_to_text_weight}")
        if backend not in ("auto", "reference", "fused"):
            raise ValueError(f"backend must be one of 'auto', 'reference', 'fused', got '{backend}'")
        self.image_to_text_weight = float(image_to_text_weight)
        self.normalize = bool(normalize)
        self.eps = float(eps)
        self.backend = backend
        if learnable_temperature:
            if not self.MIN_TEMPERATURE <= temperature <= self.MAX_TEMPERATURE:
                raise ValueError(f"a learnable temperature must start in [{self.MIN_TEMPERATURE}, "
                                 f"{self.MAX_TEMPERATURE}], got {temperature}")
            self.log_temperature = torch.nn.Parameter(torch.tensor(math.log(float(temperature))))
        else:
            self.register_buffer("temperature", torch.tensor(float(temperature), dtype=torch.float64))

    def __getattr__(self, name: str) -> Any:
        # A learnable module's tau is derived from log_temperature on every access, so that it is
        # the value the loss uses (clamped) and carries the gradient back to the parameter.
        if name == "temperature" and "log_temperature" in self.__dict__.get("_parameters", {}):
            log_t = self._parameters["log_temperature"]
            return log_t.clamp(math.log(self.MIN_TEMPERATURE), math.log(self.MAX_TEMPERATURE)).exp()
        return super().__getattr__(name)

    def forward(self, image_emb: torch.Tensor, text_emb: torch.Tensor, return_stats: bool = False):
        if self.group is not None:
            from .dist import infonce_loss_distributed  # convirt.dist imports this module
            return infonce_loss_distributed(image_emb, text_emb, self.group, self.temperature,
                                            self.image_to_text_weight, self.normalize, self.eps,
                                            return_stats)
        return infonce_loss(image_emb, text_emb, self.temperature, self.image_to_text_weight,
                            self.normalize, self.eps, self.backend, return_stats)

    def extra_repr(self) -> str:
        learnable = "log_temperature" in self._parameters
        return (f"temperature={float(self.temperature):g}{' (learnable)' if learnable else ''}, "
                f"image_to_text_weight={self.image_to_text_weight}, normalize={self.normalize}, "
                f"backend='{self.backend}'" + ("" if self.group is None else ", group=set"))
