# Type stubs for convirt.models (ConVIRTModel is a torch.nn.Module around convirt._C.models.ConVIRTModel).
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple, TypeVar, Union

import torch

_Path = Union[str, os.PathLike[str]]
_M = TypeVar("_M", bound="ConVIRTModel")

class CppTensors(torch.nn.Module):
    """A node of the tree under a ConVIRTModel holding C++ tensors under their C++ names; not callable."""
    def forward(self, *args: Any, **kwargs: Any) -> Any: ...

class ConVIRTModel(torch.nn.Module):
    """A ConVIRT model as a torch.nn.Module whose parameters and buffers are the C++ tensors: image
    encoder f_v, text encoder f_u and their projection heads, computed in C++."""
    def __init__(self, preset_or_config: Any = ...) -> None: ...
    @property
    def cpp(self) -> Any:
        """The wrapped C++ model (convirt._C.models.ConVIRTModel), sharing every tensor."""
    def forward(self, images: torch.Tensor, input_ids: torch.Tensor,
                attention_mask: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]: ...
    def __call__(self, images: torch.Tensor, input_ids: torch.Tensor,
                 attention_mask: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]: ...
    def encode_image(self, images: torch.Tensor) -> torch.Tensor: ...
    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor: ...
    def image_features(self, images: torch.Tensor) -> torch.Tensor: ...
    def text_features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor: ...
    def encode_images(self, images: Union[torch.Tensor, Sequence[_Path]], batch_size: int = ...,
                      projected: bool = ...) -> torch.Tensor:
        """Embeddings [N, d] of preprocessed images or image files (the model's eval preprocessing)."""
    def encode_texts(self, texts: Sequence[str], batch_size: int = ..., projected: bool = ...,
                     vocab: Optional[_Path] = ...) -> torch.Tensor:
        """Embeddings [N, d] of texts, tokenised with the model's vocabulary."""
    def train(self: _M, mode: bool = ...) -> _M: ...
    @property
    def config_json(self) -> str: ...
    @property
    def config(self) -> Dict[str, Any]: ...
    @property
    def image_channels(self) -> int:
        """Channels of the images the image encoder takes (resnet.in_channels for the built-in
        ResNets, image_encoder_options["in_channels"] for a registered encoder)."""
    @property
    def output_dim(self) -> int: ...
    def save(self, path: _Path) -> None: ...
    def export_torchvision(self, path: _Path) -> None: ...
    def export_hf(self, dir: _Path, vocab_path: _Path = ..., format: str = ...) -> None: ...

def make(preset_or_config: Union[str, Dict[str, Any]] = ...) -> ConVIRTModel:
    """A freshly initialised model (a torch.nn.Module) from a preset name, a config dict, JSON text or a
    .json file path."""
def load(path: _Path) -> ConVIRTModel:
    """Rebuilds the model saved at ``path`` (it remembers the path to find vocab.txt beside it)."""
def read_config(path: _Path) -> Dict[str, Any]:
    """The model config stored in a convirt checkpoint."""
def read_vocabulary(path: _Path) -> List[str]:
    """The vocabulary a convirt checkpoint carries, one token per id ([] if none)."""
def preset_config(name: str) -> Dict[str, Any]:
    """The config of a named preset."""
def preset_names() -> List[str]:
    """The preset names ("paper", "small", ...)."""
def read_state_dict(path: _Path) -> Dict[str, torch.Tensor]:
    """Tensors of a torch.save state_dict file or a safetensors file."""
def read_safetensors(path: _Path) -> Dict[str, torch.Tensor]:
    """Tensors of a safetensors file."""
def write_safetensors(path: _Path, tensors: Dict[str, torch.Tensor],
                      metadata: Optional[Dict[str, str]] = ...) -> None:
    """Writes tensors (and string metadata) as safetensors."""
def write_torch_state_dict(path: _Path, tensors: Dict[str, torch.Tensor]) -> None:
    """Writes tensors as a torch.load-able state_dict file."""
def torchvision_state_dict(model_or_path: Union[ConVIRTModel, _Path]) -> Dict[str, torch.Tensor]:
    """The image encoder's weights under torchvision's names."""
def torchvision_resnet(model_or_path: Union[ConVIRTModel, _Path], num_classes: int = ...) -> torch.nn.Module:
    """A torchvision ResNet holding the trained image encoder (fc = Identity)."""
def export_torchvision(model_or_path: Union[ConVIRTModel, _Path], path: _Path) -> None:
    """Writes the image encoder as a torchvision state_dict file."""
def export_hf_bert(model_or_path: Union[ConVIRTModel, _Path], out_dir: _Path, vocab_path: _Path = ...,
                   format: str = ...) -> None:
    """Writes the text encoder as a Hugging Face BERT folder."""
def hf_bert_state_dict(path: _Path) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """A HF BERT folder's weights under BertModel names, and the skipped keys."""

__all__: List[str]
