"""convirt: ConVIRT contrastive image-text pretraining (C++/LibTorch) for PyTorch users."""
import torch as _torch  # noqa: F401  (loads libtorch before the extension)

from . import _C
from ._C import __version__, cuda_kernels_available, set_num_threads, default_num_threads
