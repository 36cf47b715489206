# Type stubs for convirt.data (bound from C++: convirt._C.data).
import os
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import torch
import torch.utils.data

_Path = Union[str, os.PathLike[str]]
_Transform = Optional[Callable[..., torch.Tensor]]

UNCERTAIN_POLICIES: Tuple[str, ...]

class Dataset(torch.utils.data.Dataset):
    """A convirt reader as a torch Dataset: ``ds[i]`` is a dict of tensors and metadata."""
    seed: Optional[int]
    epoch: int
    def __init__(self, native: Any, *, seed: Optional[int] = ...) -> None: ...
    @property
    def native(self) -> Any: ...
    def __len__(self) -> int: ...
    def __getitem__(self, index: int) -> Dict[str, Any]: ...
    def set_epoch(self, epoch: int) -> None: ...
    def sample_seed(self, index: int) -> int: ...
    def get(self, index: int, seed: int = ...) -> Dict[str, Any]: ...
    def source(self, index: int) -> str: ...
    @property
    def label_names(self) -> List[str]: ...
    def labels(self) -> Optional[torch.Tensor]: ...
    def skipped(self) -> List[Dict[str, Any]]: ...

class PairedDataset(Dataset):
    """Paired (image, sentence) data over explicit records."""
    def __init__(self, records: Sequence[Tuple[Sequence[_Path], Sequence[str], str, str]],
                 transform: _Transform = ..., channels: int = ..., *, seed: Optional[int] = ...) -> None: ...
    def num_images(self) -> int: ...
    def records(self) -> List[Tuple[List[str], List[str], str, str]]: ...

class MimicCxrDataset(PairedDataset):
    """MIMIC-CXR-JPG 2.0.0 with its reports."""
    def __init__(self, root: _Path, split: str = ..., *, frontal_only: bool = ...,
                 frontal_views: Sequence[str] = ..., reports_dir: _Path = ..., image_extension: str = ...,
                 sections_only: bool = ..., min_tokens: int = ..., transform: _Transform = ...,
                 channels: int = ..., max_bad_fraction: float = ...,
                 skip_bad_rows: bool = ..., seed: Optional[int] = ...) -> None: ...

class CsvPairsDataset(PairedDataset):
    """Pairs from a CSV with image path(s) and report text or report file."""
    def __init__(self, csv_path: _Path, *, image_column: str = ..., path_separator: str = ...,
                 text_column: str = ..., report_file_column: str = ..., study_column: str = ...,
                 patient_column: str = ..., root: _Path = ..., sections_only: bool = ...,
                 min_tokens: int = ..., transform: _Transform = ..., channels: int = ...,
                 max_bad_fraction: float = ...,
                 skip_bad_rows: bool = ..., seed: Optional[int] = ...) -> None: ...

class LabeledDataset(Dataset):
    """Labelled images over explicit records."""
    def __init__(self, records: Sequence[Tuple[_Path, Sequence[float], Sequence[float], str, str]],
                 label_names: Sequence[str], transform: _Transform = ..., channels: int = ..., *,
                 seed: Optional[int] = ...) -> None: ...
    def masks(self) -> torch.Tensor: ...
    def set_transform(self, transform: _Transform) -> None: ...
    def records(self) -> List[Tuple[str, List[float], List[float], str, str]]: ...

class ChexpertDataset(LabeledDataset):
    """CheXpert with an uncertain-label policy."""
    def __init__(self, csv_path: _Path, *, labels: Optional[Sequence[str]] = ..., uncertain: str = ...,
                 blank_is_negative: bool = ..., frontal_only: bool = ..., image_root: _Path = ...,
                 transform: _Transform = ..., channels: int = ..., max_bad_fraction: float = ...,
                 skip_bad_rows: bool = ...,
                 seed: Optional[int] = ...) -> None: ...

class RsnaDataset(LabeledDataset):
    """RSNA Pneumonia Detection as a binary task."""
    def __init__(self, root: _Path, *, labels_csv: str = ..., images_dir: str = ..., extension: str = ...,
                 transform: _Transform = ..., channels: int = ..., max_bad_fraction: float = ...,
                 skip_bad_rows: bool = ...,
                 seed: Optional[int] = ...) -> None: ...

class CovidxDataset(LabeledDataset):
    """COVIDx as a multi-class task."""
    def __init__(self, root: _Path, split_file: str = ..., *, classes: Sequence[str] = ...,
                 images_dir: _Path = ..., transform: _Transform = ..., channels: int = ...,
                 max_bad_fraction: float = ...,
                 skip_bad_rows: bool = ..., seed: Optional[int] = ...) -> None: ...

class MuraDataset(LabeledDataset):
    """MURA v1.1 as a binary task."""
    def __init__(self, root: _Path, split: str = ..., *, transform: _Transform = ..., channels: int = ...,
                 max_bad_fraction: float = ...,
                 skip_bad_rows: bool = ..., seed: Optional[int] = ...) -> None: ...

class SubsetDataset(Dataset):
    """Some samples of another dataset."""
    base: Dataset
    def __init__(self, base: Dataset, indices: Sequence[int], *, seed: Optional[int] = ...) -> None: ...
    @property
    def indices(self) -> List[int]: ...

class RetrievalSet:
    """The CheXpert 8x200-style retrieval set."""
    candidates: Dataset
    image_queries: Dataset
    text_candidates: Dataset
    def __init__(self, dir: _Path, *, categories: Optional[Sequence[str]] = ..., image_root: _Path = ...,
                 transform: _Transform = ..., channels: int = ..., max_bad_fraction: float = ...,
                 skip_bad_rows: bool = ...,
                 seed: Optional[int] = ...) -> None: ...
    @property
    def categories(self) -> List[str]: ...
    @property
    def text_queries(self) -> List[Dict[str, Any]]: ...

class Loader:
    """The C++ threaded loader: one epoch of batch dicts per iteration."""
    dataset: Dataset
    def __init__(self, dataset: Dataset, batch_size: int = ..., *, shuffle: bool = ...,
                 drop_last: bool = ..., seed: int = ..., workers: int = ..., prefetch: int = ...,
                 rank: int = ..., world_size: int = ..., max_bad_fraction: float = ...) -> None: ...
    def __len__(self) -> int: ...
    def next(self) -> Optional[Dict[str, Any]]: ...
    def __iter__(self) -> Iterator[Dict[str, Any]]: ...
    @property
    def position(self) -> Tuple[int, int]: ...
    def set_position(self, epoch: int, step: int) -> None: ...
    def epoch_indices(self, epoch: int) -> List[int]: ...
    def bad_samples(self) -> List[Dict[str, Any]]: ...
    def close(self) -> None: ...
    def __enter__(self) -> "Loader": ...
    def __exit__(self, *exc: Any) -> None: ...

def label_fraction_indices(labels: Any, fraction: float, seed: int = ...) -> List[int]:
    """Sorted indices of a seeded, stratified fraction of the rows of ``labels``."""
def label_fraction_subset(dataset: Dataset, fraction: float, seed: int = ...) -> SubsetDataset:
    """The paper's 1% / 10% / 100% training subsets."""
def stratified_split(labels: Any, first_fraction: float, seed: int = ...,
                     groups: Sequence[str] = ...) -> Tuple[List[int], List[int]]:
    """Seeded, stratified (first, rest) split."""
def chexpert_paper_labels() -> List[str]:
    """The five CheXpert labels the paper evaluates."""
def chexpert_all_labels() -> List[str]:
    """The 14 CheXpert observation columns."""
def retrieval_categories() -> List[str]:
    """The eight 8x200 retrieval categories."""
def report_sentences(report: str, sections_only: bool = ..., min_tokens: int = ...) -> List[str]:
    """The sentences a paired reader keeps from a report."""
def generate_synthetic(out_dir: _Path, **options: Any) -> Dict[str, Any]:
    """Writes the seeded synthetic dataset under ``out_dir``."""
def synthetic_example(seed: int, image_size: int = ..., lateral: bool = ..., only: int = ...,
                      **options: Any) -> Dict[str, Any]:
    """One synthetic study without writing files."""
def synthetic_text_queries(category: int, count: int, seed: int = ...) -> List[str]:
    """Text queries for a retrieval category."""
def finding_names() -> List[str]:
    """The seven findings of the synthetic generator."""

__all__: List[str]
