"""convirt: ConVIRT contrastive image-text pretraining (C++/LibTorch) for PyTorch users.

Tensor ops are dispatcher ops (``torch.ops.convirt.*``) registered when the native extension loads;
everything else (tokenizer, transforms, datasets, models, trainer, evaluation) is bound with pybind11.

Submodules: ``convirt.text`` (WordPiece tokenizer, report parsing), ``convirt.image`` and
``convirt.transforms`` (decoding and the paper's augmentation), ``convirt.models`` (encoders, checkpoints,
torchvision / Hugging Face export), ``convirt.data`` (dataset readers as torch Datasets, the loader,
the synthetic generator), ``convirt.eval`` (metrics, linear protocol, retrieval, t-SNE),
``convirt.train`` (the C++ pretrainer), ``convirt.dist`` (global negatives across processes).
"""
import torch as _torch  # noqa: F401  (loads libtorch before the extension)

from . import _C
from ._C import __version__, cuda_kernels_available, default_num_threads, set_num_threads
from . import _fake
from .loss import InfoNCELoss, InfoNCEOutput, infonce_loss
from . import text, image, transforms, models, data, eval, train, dist  # noqa: E402

_fake.register()

__all__ = [
    "__version__",
    "cuda_kernels_available",
    "set_num_threads",
    "default_num_threads",
    "infonce_loss",
    "InfoNCELoss",
    "InfoNCEOutput",
    "text",
    "image",
    "transforms",
    "models",
    "data",
    "eval",
    "train",
    "dist",
]
