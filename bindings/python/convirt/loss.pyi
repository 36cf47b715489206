# Type stubs for convirt.loss (the op is torch.ops.convirt.infonce_loss).
from typing import Any, List, Literal, NamedTuple, Union, overload

import torch

class InfoNCEOutput(NamedTuple):
    loss: torch.Tensor
    image_to_text: torch.Tensor
    text_to_image: torch.Tensor
    image_to_text_accuracy: torch.Tensor
    text_to_image_accuracy: torch.Tensor

@overload
def infonce_loss(image_emb: torch.Tensor, text_emb: torch.Tensor,
                 temperature: Union[float, torch.Tensor] = ..., image_to_text_weight: float = ...,
                 normalize: bool = ..., eps: float = ..., backend: str = ...,
                 return_stats: Literal[False] = ...) -> torch.Tensor: ...
@overload
def infonce_loss(image_emb: torch.Tensor, text_emb: torch.Tensor,
                 temperature: Union[float, torch.Tensor] = ..., image_to_text_weight: float = ...,
                 normalize: bool = ..., eps: float = ..., backend: str = ...,
                 return_stats: Literal[True] = ...) -> InfoNCEOutput: ...

class InfoNCELoss(torch.nn.Module):
    MIN_TEMPERATURE: float
    MAX_TEMPERATURE: float
    temperature: torch.Tensor
    image_to_text_weight: float
    normalize: bool
    eps: float
    backend: str
    group: Any
    def __init__(self, temperature: float = ..., image_to_text_weight: float = ...,
                 normalize: bool = ..., eps: float = ..., backend: str = ...,
                 learnable_temperature: bool = ..., group: Any = ...) -> None: ...
    def forward(self, image_emb: torch.Tensor, text_emb: torch.Tensor,
                return_stats: bool = ...) -> Union[torch.Tensor, InfoNCEOutput]: ...

__all__: List[str]
