# Type stubs for convirt.dist (bound from C++: convirt._C.dist).
from typing import Any, List, NamedTuple, Optional, Sequence, Tuple, Union

import torch

class DistributedContext:
    """A c10d (Gloo) process group: rank, world size and the collectives convirt needs."""
    def __init__(self, rank: int = ..., world_size: int = ..., local_rank: int = ...,
                 master_addr: str = ..., master_port: int = ..., timeout_seconds: float = ...,
                 backend: str = ..., gloo_interface: str = ..., gloo_threads: int = ...) -> None: ...
    @staticmethod
    def from_environment() -> "DistributedContext": ...
    @property
    def rank(self) -> int: ...
    @property
    def world_size(self) -> int: ...
    @property
    def local_rank(self) -> int: ...
    @property
    def is_main(self) -> bool: ...
    @property
    def is_distributed(self) -> bool: ...
    @property
    def timeout_seconds(self) -> float: ...
    def all_reduce_(self, tensor: torch.Tensor, op: str = ...) -> torch.Tensor: ...
    def all_gather(self, tensor: torch.Tensor) -> List[torch.Tensor]: ...
    def all_gather_rows(self, tensor: torch.Tensor) -> torch.Tensor: ...
    def all_gather_sizes(self, rows: int) -> List[int]: ...
    def broadcast_(self, tensor: torch.Tensor, root: int = ...) -> torch.Tensor: ...
    def barrier(self) -> None: ...

class GradientSynchronizer:
    """Bucketed all-reduce of parameter gradients (sum, or average) across the ranks."""
    def __init__(self, parameters: List[torch.Tensor], ctx: DistributedContext,
                 bucket_cap_mb: float = ..., overlap: bool = ..., average: bool = ...) -> None: ...
    def synchronize(self) -> None: ...
    @property
    def num_buckets(self) -> int: ...
    def bucket_members(self) -> List[List[int]]: ...

class InfoNCEOutput(NamedTuple):
    """The global loss and the global batch's statistics (identical on every rank)."""
    loss: torch.Tensor
    image_to_text: torch.Tensor
    text_to_image: torch.Tensor
    image_to_text_accuracy: torch.Tensor
    text_to_image_accuracy: torch.Tensor

Group = Union[DistributedContext, Any, None]

def gather_with_grad(local: torch.Tensor, ctx: DistributedContext) -> torch.Tensor:
    """All ranks' rows; backward returns this rank's share of the gradient."""
def gloo_available() -> bool:
    """Whether LibTorch was built with Gloo."""
def find_free_port(host: str = ...) -> int:
    """A free TCP port on ``host``."""
def infonce_loss_distributed(image_emb: torch.Tensor, text_emb: torch.Tensor, group: Group = ...,
                             temperature: Union[float, torch.Tensor] = ...,
                             image_to_text_weight: float = ..., normalize: bool = ...,
                             eps: float = ..., return_stats: bool = ...) -> Any:
    """ConVIRT's loss over the global batch."""

def broadcast_parameters(module: torch.nn.Module, group: Group = ..., root: int = ...) -> None:
    """Copies rank ``root``'s parameters and buffers into every rank's module."""
def shard_range(total: int, rank: int, world_size: int) -> range:
    """The contiguous rows ``rank`` owns of ``total``."""
def launch(argv: Sequence[str], nproc: int = ..., nnodes: int = ..., node_rank: int = ...,
           master_addr: str = ..., master_port: int = ..., kill_grace_seconds: float = ...) -> int:
    """Runs ``argv`` as ``nproc`` ranks with torchrun's environment."""
def launch_local(nproc: int, argv: Sequence[str]) -> int:
    """launch() on this machine with a free port."""

__all__: List[str]
