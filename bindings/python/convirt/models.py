"""ConVIRT models and weight formats (``convirt._C.models``), with torchvision and Hugging Face helpers.

A model is built from a preset (``"paper"``, ``"small"``) or a ModelConfig JSON text, saved as one
safetensors checkpoint that records its config, and exported back to the formats users already have:

Example::

    import convirt.models as cm
    model = cm.make("small")                             # a torch.nn.Module
    v, u = model(images, input_ids, attention_mask)      # [B, d] each, differentiable
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)  # trains the C++ weights
    model.save("convirt.safetensors")

    model = cm.load("runs/demo/pretrain-convirt/model.pt")
    v = model.encode_images(["a.png", "b.png"])          # the model's own eval preprocessing
    u = model.encode_texts(["No effusion."])             # its tokenizer (vocab.txt beside the file)

    resnet = cm.torchvision_resnet("convirt.safetensors")  # a torchvision ResNet with the trained weights
    cm.export_hf_bert("convirt.safetensors", "bert_out", vocab_path="vocab.txt")
    # transformers.BertModel.from_pretrained("bert_out") opens it

How :class:`ConVIRTModel` is a ``torch.nn.Module`` while the computation stays in C++:

* It wraps the C++ ``convirt::models::ConVIRTModelImpl`` (the pybind11 class
  ``convirt._C.models.ConVIRTModel``, reachable as ``model.cpp``). ``forward`` and the encoders call
  C++ with the GIL released.
* Its parameters and buffers *are* the C++ tensors: the tensor objects C++ holds are registered (as
  ``nn.Parameter`` for parameters) in a tree of :class:`CppTensors` submodules that mirrors the
  dotted C++ names, so ``state_dict()`` keys are the checkpoint's names
  (``image_encoder.layer1.0.conv1.weight``), gradients computed by C++ land in ``p.grad`` of the very
  objects an optimiser holds, and an in-place update (``optimizer.step()``, ``load_state_dict``) is
  seen by the next C++ forward.
* ``.to()``, ``.cuda()``, ``.double()`` (``nn.Module._apply``) change each parameter in place
  (``param.data = ...``), which C++ sees as it is the same tensor; a buffer, which ``_apply``
  replaces by a new tensor, and any tensor a load with ``assign=True`` replaced, is put back: the C++
  tensor is pointed at the new storage (``set_data``) and registered again, so Python and C++ never
  diverge.
* ``.train()`` / ``.eval()`` set the C++ module's mode too (BatchNorm statistics, dropout).
* Pickling (``torch.save(model)``, ``copy.deepcopy``, DataLoader workers) stores the config JSON and
  the tensors (with their device, dtype and ``requires_grad``) and rebuilds the C++ model from them;
  everything else the module holds (mode, hooks, user-added submodules) is pickled as usual.
* Forward hooks on the model fire; hooks on the :class:`CppTensors` submodules do not, as C++ runs
  those layers, and calling one of them is a RuntimeError.
"""
from __future__ import annotations

import json
import os
import tempfile
import weakref
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import torch

from ._C import models as _models

__all__ = [
    "ConVIRTModel", "CppTensors", "make", "load", "read_config", "read_vocabulary", "preset_config",
    "preset_names",
    "read_state_dict", "read_safetensors", "write_safetensors", "write_torch_state_dict",
    "torchvision_state_dict", "torchvision_resnet", "export_torchvision", "export_hf_bert",
    "hf_bert_state_dict",
]

_CppModel = _models.ConVIRTModel
preset_names = _models.preset_names
read_state_dict = _models.read_state_dict
read_safetensors = _models.read_safetensors
write_torch_state_dict = _models.write_torch_state_dict

_PathLike = Union[str, "os.PathLike[str]"]


class CppTensors(torch.nn.Module):
    """One node of the tree under a :class:`ConVIRTModel` that holds the C++ model's tensors under their
    C++ names (``model.image_encoder.layer1[0]`` is not a layer: the C++ model runs the layers).

    It exists so that ``named_parameters()``, ``state_dict()`` and ``load_state_dict()`` see the C++
    names; calling it is a RuntimeError.
    """

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("CppTensors only holds C++ tensors under their names; call the ConVIRTModel "
                           "it belongs to (or its encode_image / encode_text)")

    def __setattr__(self, name: str, value: Any) -> None:
        # C++ computes with the tensor objects it was built with, so a tensor assigned to one of their
        # names is taken by reference into that object (set_data) instead of replacing it; replacing
        # it would leave C++ on the old weights.
        for kind in ("_parameters", "_buffers"):
            table = self.__dict__.get(kind)
            if table is None or table.get(name) is None:
                continue
            target = table[name]
            if not isinstance(value, torch.Tensor) or value.shape != target.shape:
                got = (f"shape {list(value.shape)}" if isinstance(value, torch.Tensor)
                       else type(value).__name__)
                raise TypeError(f"'{name}' holds a C++ tensor: assign a tensor of shape "
                                f"{list(target.shape)}, got {got}")
            with torch.no_grad():
                target.data = value.detach()
            if kind == "_parameters":
                target.requires_grad_(value.requires_grad)
            return
        super().__setattr__(name, value)

    def __delattr__(self, name: str) -> None:
        if name in self._parameters or name in self._buffers:
            raise AttributeError(f"'{name}' holds a C++ tensor the model needs; it cannot be deleted")
        super().__delattr__(name)

    def _apply(self, fn: Any, *args: Any, **kwargs: Any) -> "CppTensors":
        # model.text_encoder.to(...) replaces buffers below this node only; the model puts them back
        # into the C++ tensors (when the model runs _apply itself, it does so once, at its end).
        super()._apply(fn, *args, **kwargs)
        owner = self.__dict__.get("_owner")
        model = owner() if owner is not None else None
        if model is not None and not model._applying:
            model._sync_cpp()
        return self

    def __getstate__(self) -> Dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_owner", None)  # a weak reference; a node pickled alone belongs to no model
        return state


def _as_parameter(t: torch.Tensor) -> torch.Tensor:
    # The object C++ holds becomes an nn.Parameter in place (a class change, not a copy): an
    # nn.Parameter(t) would be a second tensor, so gradients C++ computes would miss the optimiser.
    if type(t) is not torch.nn.Parameter:
        t.__class__ = torch.nn.Parameter
    return t


def _resync_after_load(module: "ConVIRTModel", incompatible_keys: Any) -> None:
    # A load_state_dict post-hook (a module-level function so the model stays picklable).
    module._sync_cpp()


class ConVIRTModel(torch.nn.Module):
    """A ConVIRT model as a ``torch.nn.Module``: image encoder f_v, text encoder f_u and their projection
    heads, computed in C++; its parameters and buffers are the C++ tensors (see the module docstring).

    ``ConVIRTModel(preset_or_config)`` builds a fresh model like :func:`make`; ``ConVIRTModel(cpp)``
    wraps a ``convirt._C.models.ConVIRTModel``.
    """

    def __init__(self, preset_or_config: Any = "small") -> None:
        super().__init__()
        if isinstance(preset_or_config, _CppModel):
            impl = preset_or_config
        elif isinstance(preset_or_config, ConVIRTModel):
            raise TypeError("ConVIRTModel(preset_or_config): got a ConVIRTModel; use copy.deepcopy to "
                            "copy one")
        else:
            impl = _make_cpp(preset_or_config)
        self._impl = impl
        self._source_path: Optional[str] = None
        self._applying = False
        self._mirror()
        self.train(impl.training)
        # Also when a parent module loads: a load with assign=True (torch 2.x) replaces tensors.
        self.register_load_state_dict_post_hook(_resync_after_load)

    # -- the tensor tree ---------------------------------------------------------------------------

    def _mirror(self) -> None:
        """Registers the C++ tensors in the CppTensors tree (called on construction and unpickling)."""
        for kind, named in (("parameter", self._impl.named_parameters()),
                            ("buffer", self._impl.named_buffers())):
            for name, t in named.items():
                node, leaf = self._node(name, create=True)
                if kind == "parameter":
                    node._parameters[leaf] = _as_parameter(t)
                else:
                    node._buffers[leaf] = t

    def _node(self, name: str, create: bool = False) -> Tuple[torch.nn.Module, str]:
        parts = name.split(".")
        node: torch.nn.Module = self
        for part in parts[:-1]:
            child = node._modules.get(part)
            if child is None:
                if not create:
                    raise KeyError(name)
                # Straight into _modules: a C++ name that is also an nn.Module attribute must still fit.
                child = node._modules[part] = CppTensors()
                object.__setattr__(child, "_owner", weakref.ref(self))
            node = child
        return node, parts[-1]

    def _sync_cpp(self) -> None:
        """Makes every C++ tensor hold what Python registers under its name: a tensor that ``_apply``
        or a load replaced is copied into the C++ tensor object by reference (``set_data``, no copy of
        the values) and that object registered again."""
        for kind, named in (("parameter", self._impl.named_parameters()),
                            ("buffer", self._impl.named_buffers())):
            for name, cpp in named.items():
                node, leaf = self._node(name)
                table = node._parameters if kind == "parameter" else node._buffers
                py = table.get(leaf)
                if py is cpp:
                    continue
                if py is None:
                    raise RuntimeError(f"ConVIRTModel: the {kind} '{name}' was removed; the C++ model "
                                       "needs every tensor it was built with")
                if py.shape != cpp.shape:
                    raise RuntimeError(f"ConVIRTModel: the {kind} '{name}' was replaced by a tensor of "
                                       f"shape {list(py.shape)}; the C++ model needs {list(cpp.shape)}")
                with torch.no_grad():
                    cpp.data = py.detach()
                if kind == "parameter":
                    cpp.requires_grad_(py.requires_grad)
                    cpp.grad = py.grad
                    _as_parameter(cpp)
                table[leaf] = cpp

    def _apply(self, fn: Any, *args: Any, **kwargs: Any) -> "ConVIRTModel":
        self._applying = True
        try:
            super()._apply(fn, *args, **kwargs)
        finally:
            self._applying = False
        self._sync_cpp()
        return self

    def train(self, mode: bool = True) -> "ConVIRTModel":
        """Training (``True``) or evaluation mode, in Python and in the C++ modules (BatchNorm, dropout)."""
        if not isinstance(mode, bool):
            raise ValueError(f"train: mode must be a bool, got {type(mode).__name__}")
        super().train(mode)
        self._impl.train(mode)
        return self

    # -- pickling ----------------------------------------------------------------------------------

    def __getstate__(self) -> Dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_impl")
        mirror_roots = {name.split(".", 1)[0] for name in self._cpp_names()}
        state["_modules"] = type(self._modules)(
            (k, m) for k, m in self._modules.items() if k not in mirror_roots)
        tensors = {}
        for name in self._cpp_names():
            node, leaf = self._node(name)
            t = node._parameters.get(leaf, node._buffers.get(leaf))
            tensors[name] = (t.detach(), t.requires_grad)
        state["_convirt_cpp"] = {"config_json": self._impl.config_json, "tensors": tensors,
                                 "vocabulary": list(self._impl.vocabulary),
                                 "vocabulary_lowercase": self._impl.vocabulary_lowercase}
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        state = dict(state)
        saved = state.pop("_convirt_cpp")
        user_modules = state["_modules"]
        state["_modules"] = type(user_modules)()
        self.__dict__.update(state)
        self._impl = _models.make_convirt(saved["config_json"])
        self._impl.vocabulary = saved.get("vocabulary", [])
        self._impl.vocabulary_lowercase = saved.get("vocabulary_lowercase", True)
        self._mirror()
        self._modules.update(user_modules)
        for name, (t, requires_grad) in saved["tensors"].items():
            node, leaf = self._node(name)
            target = node._parameters.get(leaf, node._buffers.get(leaf))
            if target is None:
                raise ValueError(f"ConVIRTModel: the pickled tensor '{name}' is not in the model its "
                                 "config builds")
            with torch.no_grad():
                target.data = t  # device and dtype come with it
            target.requires_grad_(requires_grad)
        self.train(self.training)

    def _cpp_names(self) -> List[str]:
        return list(self._impl.named_parameters()) + list(self._impl.named_buffers())

    # -- computation -------------------------------------------------------------------------------

    @property
    def cpp(self) -> Any:
        """The wrapped C++ model (``convirt._C.models.ConVIRTModel``), sharing every tensor."""
        return self._impl

    def forward(self, images: torch.Tensor, input_ids: torch.Tensor,
                attention_mask: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(v, u)``: projected image and text embeddings ``[B, d]`` of paired inputs."""
        return self._impl.forward(images, input_ids, attention_mask)

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """Projected image embeddings v ``[B, d]`` of preprocessed images ``[B, C, H, W]``."""
        return self._impl.encode_image(images)

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Projected text embeddings u ``[B, d]`` of token ids and their attention mask."""
        return self._impl.encode_text(input_ids, attention_mask)

    def image_features(self, images: torch.Tensor) -> torch.Tensor:
        """The image encoder's pooled features (before the projection head)."""
        return self._impl.image_features(images)

    def text_features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The text encoder's pooled features (before the projection head)."""
        return self._impl.text_features(input_ids, attention_mask)

    @property
    def config_json(self) -> str:
        """The ModelConfig as JSON text (what checkpoints store)."""
        return self._impl.config_json

    @property
    def config(self) -> Dict[str, Any]:
        """The ModelConfig as a dict."""
        return json.loads(self._impl.config_json)

    @property
    def image_channels(self) -> int:
        """Channels of the images the image encoder takes: ``config["resnet"]["in_channels"]`` for the
        built-in ResNets, ``config["image_encoder_options"]["in_channels"]`` for a registered one."""
        return self._impl.image_channels

    @property
    def output_dim(self) -> int:
        """The embedding width d of v and u."""
        return self._impl.output_dim

    def save(self, path: _PathLike) -> None:
        """Writes a convirt checkpoint (safetensors with the config) that :func:`load` reads."""
        self._impl.save(os.fspath(path))

    def export_torchvision(self, path: _PathLike) -> None:
        """Writes the image encoder as a torchvision state_dict file (see :func:`export_torchvision`)."""
        self._impl.export_torchvision(os.fspath(path))

    def export_hf(self, dir: _PathLike, vocab_path: _PathLike = "", format: str = "safetensors") -> None:
        """Writes the text encoder as a Hugging Face BERT folder (see :func:`export_hf_bert`)."""
        self._impl.export_hf(os.fspath(dir), os.fspath(vocab_path) if vocab_path else "", format)

    # -- embeddings of raw inputs ------------------------------------------------------------------

    def _device_dtype(self) -> Tuple[torch.device, torch.dtype]:
        p = next(t for t in self.parameters() if t.is_floating_point())
        return p.device, p.dtype

    def _embed(self, batches: Iterator[Any], encode: Any) -> torch.Tensor:
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                out = [encode(b) for b in batches]
        finally:
            self.train(was_training)
        return torch.cat(out)

    def encode_images(self, images: Union[torch.Tensor, Sequence[_PathLike]], batch_size: int = 64,
                      projected: bool = True) -> torch.Tensor:
        """Embeddings ``[N, d]`` of images: a float tensor ``[N, C, H, W]`` already preprocessed, or a
        list of image files (JPEG, PNG, DICOM), read with the model's channel count and the paper's
        evaluation preprocessing (pad to square, resize to the config's ``image_size``), as the
        evaluation pipelines read them.

        Runs in eval mode under ``torch.no_grad`` in batches of ``batch_size`` on the model's device,
        then restores the previous mode. ``projected=False`` gives the image encoder's features.
        """
        _check_batch_size(batch_size)
        cfg = self.config
        device, dtype = self._device_dtype()
        if isinstance(images, torch.Tensor):
            if images.dim() != 4 or not images.is_floating_point():
                raise ValueError("encode_images: images must be a float tensor [N, C, H, W] or a list of "
                                 f"image paths, got a {images.dtype} tensor of shape {list(images.shape)}")
            n = images.size(0)
            batches = (images[i:i + batch_size] for i in range(0, n, batch_size))
        else:
            paths = _paths(images)
            n = len(paths)
            batches = (_read_images(paths[i:i + batch_size], cfg, self.image_channels)
                       for i in range(0, n, batch_size))
        if n == 0:
            raise ValueError("encode_images: images must hold at least one image, got none")
        encode = self._impl.encode_image if projected else self._impl.image_features
        return self._embed(batches, lambda x: encode(x.to(device=device, dtype=dtype)))

    def encode_texts(self, texts: Sequence[str], batch_size: int = 64, projected: bool = True,
                     vocab: Optional[_PathLike] = None) -> torch.Tensor:
        """Embeddings ``[N, d]`` of texts, tokenised by the model's WordPiece tokenizer (the config's
        ``max_length``, padded to it as in training).

        The vocabulary is the one the model carries (every trained model does; ``vocab``, if given,
        must hold the same tokens, else a ValueError naming both fingerprints). For a model without
        one: ``vocab``, else the ``vocab.txt`` beside the file it was loaded from or in the folder
        above; without either it is a ValueError. Runs in eval mode under ``torch.no_grad`` in batches of
        ``batch_size``, then restores the previous mode. ``projected=False`` gives the text encoder's
        features.
        """
        _check_batch_size(batch_size)
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise TypeError("encode_texts: texts must be a list of str (wrap a single text in a list), "
                            f"got {type(texts).__name__}")
        texts = list(texts)
        if not texts:
            raise ValueError("encode_texts: texts must hold at least one text, got none")
        cfg = self.config
        tokenizer = _model_tokenizer(self, vocab)
        device, _ = self._device_dtype()
        encode = self._impl.encode_text if projected else self._impl.text_features

        def run(chunk: List[str]) -> torch.Tensor:
            b = tokenizer.encode_batch(chunk, max_length=cfg["max_length"])
            return encode(b["input_ids"].to(device), b["attention_mask"].to(device))

        return self._embed((texts[i:i + batch_size] for i in range(0, len(texts), batch_size)), run)

    def extra_repr(self) -> str:
        cfg = self.config
        return (f"image_encoder={cfg['image_encoder']}, text_encoder={cfg['text_encoder']}, "
                f"output_dim={self.output_dim}")


def _check_batch_size(batch_size: int) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(f"batch_size must be an int > 0, got {batch_size!r}")


def _paths(images: Any) -> List[str]:
    if isinstance(images, (str, bytes, os.PathLike)):
        raise TypeError("encode_images: images must be a tensor or a list of paths (wrap a single path "
                        f"in a list), got {type(images).__name__}")
    paths = list(images)
    for p in paths:
        if not isinstance(p, (str, os.PathLike)):
            raise TypeError(f"encode_images: image paths must be str or os.PathLike, got {type(p).__name__}")
    return [os.fspath(p) for p in paths]


def _read_images(paths: List[str], cfg: Dict[str, Any], channels: int) -> torch.Tensor:
    from .image import eval_preprocess, read_image

    return torch.stack([eval_preprocess(read_image(p, channels=channels), cfg["image_size"])
                        for p in paths])


def _model_tokenizer(model: ConVIRTModel, vocab: Optional[_PathLike] = None) -> Any:
    """The model's tokenizer, from the one C++ rule (``pipeline::model_tokenizer``): the vocabulary the
    model carries (``vocab``, if given, must hold the same tokens, else a ValueError naming both
    fingerprints); for a model without one, ``vocab`` or the vocab.txt beside the file it was loaded
    from or in the folder above."""
    return _models.model_tokenizer(model._impl, os.fspath(vocab) if vocab else "",
                                   model._source_path or "")


def _make_cpp(preset_or_config: Any) -> Any:
    if isinstance(preset_or_config, dict):
        preset_or_config = json.dumps(preset_or_config)
    if not isinstance(preset_or_config, str):
        raise TypeError("preset_or_config must be a preset name, a config dict or JSON text, got "
                        f"{type(preset_or_config).__name__}")
    return _models.make_convirt(preset_or_config)


def make(preset_or_config: Any = "small") -> ConVIRTModel:
    """A freshly initialised model (a ``torch.nn.Module``) from a preset name, a config dict, a config
    JSON text or the path of a config .json file."""
    return ConVIRTModel(_make_cpp(preset_or_config))


def load(path: _PathLike) -> ConVIRTModel:
    """Rebuilds the model saved at ``path`` (its config is stored in the file); it remembers the path, so
    :meth:`ConVIRTModel.encode_texts` finds the vocab.txt beside it."""
    path = os.fspath(path)
    model = ConVIRTModel(_models.load_convirt(path))
    model._source_path = os.path.abspath(path)
    return model


def read_config(path: _PathLike) -> Dict[str, Any]:
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


def write_safetensors(path: _PathLike, tensors: Dict[str, torch.Tensor],
                      metadata: Optional[Dict[str, str]] = None) -> None:
    """Writes ``tensors`` (and string ``metadata``) as a safetensors file."""
    _models.write_safetensors(os.fspath(path), dict(tensors), dict(metadata or {}))


def _model(model_or_path: Any) -> Any:
    """The C++ model of a ConVIRTModel, a ``convirt._C.models.ConVIRTModel`` or a checkpoint path."""
    if isinstance(model_or_path, ConVIRTModel):
        return model_or_path.cpp
    if isinstance(model_or_path, _CppModel):
        return model_or_path
    return _models.load_convirt(os.fspath(model_or_path))


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


def export_torchvision(model_or_path: Any, path: _PathLike) -> None:
    """Writes the image encoder as a torchvision state_dict file (``torch.load`` + ``load_state_dict``).

    Raises ValueError, before anything is written, for an encoder no torchvision model can load: a base
    width other than torchvision's 64 (the small preset has 32) or custom block counts.
    """
    _model(model_or_path).export_torchvision(os.fspath(path))


def export_hf_bert(model_or_path: Any, out_dir: _PathLike, vocab_path: _PathLike = "",
                   format: str = "safetensors") -> None:
    """Writes the text encoder as a Hugging Face BERT folder: config.json, model.safetensors and/or
    pytorch_model.bin (``format``: "safetensors", "bin", "both"), and a copy of ``vocab_path``."""
    _model(model_or_path).export_hf(os.fspath(out_dir), os.fspath(vocab_path) if vocab_path else "", format)


def hf_bert_state_dict(path: _PathLike) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """A HF BERT folder's or file's weights under BertModel names (``bert.`` prefix removed), and the keys
    that were skipped (pretraining heads, position_ids)."""
    return _models.read_hf_bert_weights(os.fspath(path))
