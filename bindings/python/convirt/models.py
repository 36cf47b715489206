"""ConVIRT models and weight formats (``convirt._C.models``), with torchvision and Hugging Face helpers.

A model is built from a preset (``"paper"``, ``"small"``) or a ModelConfig JSON text, saved as one
safetensors checkpoint that records its config, and exported back to the formats users already have:

Example::

    import convirt.models as cm
    model = cm.make("small")
    v, u = model(images, input_ids, attention_mask)      # [B, d] each, differentiable
    model.save("convirt.safetensors")

    resnet = cm.torchvision_resnet("convirt.safetensors")  # a torchvision ResNet with the trained weights
    cm.export_hf_bert("convirt.safetensors", "bert_out", vocab_path="vocab.txt")
    # transformers.BertModel.from_pretrained("bert_out") opens it
"""
from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Dict, List, Optional, Tuple

import torch

from ._C import models as _models

__all__ = [
    "ConVIRTModel", "make", "load", "read_config", "read_vocabulary", "preset_config", "preset_names",
    "read_state_dict", "read_safetensors", "write_safetensors", "write_torch_state_dict",
    "torchvision_state_dict", "torchvision_resnet", "export_torchvision", "export_hf_bert",
    "hf_bert_state_dict",
]

ConVIRTModel = _models.ConVIRTModel
preset_names = _models.preset_names
read_state_dict = _models.read_state_dict
read_safetensors = _models.read_safetensors
write_torch_state_dict = _models.write_torch_state_dict


def make(preset_or_config: Any = "small") -> ConVIRTModel:
    """A freshly initialised model from a preset name, a config dict or a config JSON text."""
    if isinstance(preset_or_config, dict):
        preset_or_config = json.dumps(preset_or_config)
    return _models.make_convirt(preset_or_config)


def load(path: str) -> ConVIRTModel:
    """Rebuilds the model saved at ``path`` (its config is stored in the file)."""
    return _models.load_convirt(os.fspath(path))


def read_config(path: str) -> Dict[str, Any]:
    """The model config stored in a convirt checkpoint, as a dict."""
    return json.loads(_models.read_convirt_config(os.fspath(path)))


def read_vocabulary(path: str) -> List[str]:
    """The vocabulary a convirt checkpoint carries (the tokens its text encoder was trained with, one
    per id; ``[]`` for a file written without one)."""
    return list(_models.read_convirt_vocabulary(os.fspath(path)))


def preset_config(name: str) -> Dict[str, Any]:
    """The ModelConfig of a named preset (``preset_names()``) as a dict, e.g. to edit and pass to
    :func:`make`."""
    return json.loads(_models.preset_config(name))


def write_safetensors(path: str, tensors: Dict[str, torch.Tensor],
                      metadata: Optional[Dict[str, str]] = None) -> None:
    """Writes ``tensors`` (and string ``metadata``) as a safetensors file."""
    _models.write_safetensors(os.fspath(path), dict(tensors), dict(metadata or {}))


def _model(model_or_path: Any) -> ConVIRTModel:
    return model_or_path if isinstance(model_or_path, ConVIRTModel) else load(model_or_path)


def torchvision_state_dict(model_or_path: Any) -> Dict[str, torch.Tensor]:
    """The image encoder's weights under torchvision's names (no ``fc.*``: the encoder has no classifier).

    A 1-channel encoder's ``conv1.weight`` is returned as 3 channels of ``w / 3``, so the torchvision model
    gives the same output on a grey image replicated to RGB. An encoder no torchvision model can hold
    (base width other than 64, e.g. the small preset's 32, or custom block counts) is a ValueError.
    """
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "resnet.pth")
        _model(model_or_path).export_torchvision(path)
        return torch.load(path)


def torchvision_resnet(model_or_path: Any, num_classes: int = 1000) -> torch.nn.Module:
    """A ``torchvision.models.resnetXX`` holding the trained image encoder.

    Its ``fc`` is replaced by ``torch.nn.Identity`` (the encoder has none), so the model returns the pooled
    features, like ``ConVIRTModel.image_features``. Only torchvision's own widths (base width 64) fit.
    """
    import torchvision

    model = _model(model_or_path)
    cfg = json.loads(model.config_json)
    arch = cfg["image_encoder"]
    if not arch.startswith("resnet") or cfg["resnet"]["base_width"] != 64 or cfg["resnet"]["layers"]:
        raise ValueError(f"torchvision has no model for image encoder '{arch}' with base_width "
                         f"{cfg['resnet']['base_width']} and layers {cfg['resnet']['layers']}")
    net = getattr(torchvision.models, arch)(num_classes=num_classes)
    net.fc = torch.nn.Identity()
    net.load_state_dict(torchvision_state_dict(model))
    return net


def export_torchvision(model_or_path: Any, path: str) -> None:
    """Writes the image encoder as a torchvision state_dict file (``torch.load`` + ``load_state_dict``).

    Raises ValueError, before anything is written, for an encoder no torchvision model can load: a base
    width other than torchvision's 64 (the small preset has 32) or custom block counts.
    """
    _model(model_or_path).export_torchvision(os.fspath(path))


def export_hf_bert(model_or_path: Any, out_dir: str, vocab_path: str = "",
                   format: str = "safetensors") -> None:
    """Writes the text encoder as a Hugging Face BERT folder: config.json, model.safetensors and/or
    pytorch_model.bin (``format``: "safetensors", "bin", "both"), and a copy of ``vocab_path``."""
    _model(model_or_path).export_hf(os.fspath(out_dir), os.fspath(vocab_path) if vocab_path else "", format)


def hf_bert_state_dict(path: str) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """A HF BERT folder's or file's weights under BertModel names (``bert.`` prefix removed), and the keys
    that were skipped (pretraining heads, position_ids)."""
    return _models.read_hf_bert_weights(os.fspath(path))
