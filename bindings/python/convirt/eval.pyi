# Type stubs for convirt.eval (bound from C++: convirt._C.eval).
import os
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch

PROTOCOLS: Tuple[str, ...]
EVALUATE_DEFAULTS: Dict[str, Any]

class Results:
    """The cells of the paper's tables (percent), saved as results.json."""
    def __init__(self) -> None: ...
    def set_classification(self, protocol: str, method: str, task: str, fraction: str, mean: float,
                           stddev: float = ...) -> None: ...
    def set_retrieval(self, method: str, direction: str, k: int, mean: float, stddev: float = ...) -> None: ...
    def classification(self, protocol: str, method: str, task: str,
                       fraction: str) -> Optional[Tuple[float, float]]: ...
    def retrieval(self, method: str, direction: str, k: int) -> Optional[Tuple[float, float]]: ...
    def methods(self, section: str) -> List[str]: ...
    def tasks(self, section: str) -> List[str]: ...
    def to_json(self, indent: int = ...) -> str: ...
    @staticmethod
    def from_json(text: str) -> "Results": ...
    def save(self, path: str) -> None: ...
    @staticmethod
    def load(path: str) -> "Results": ...
    def format_classification_table(self, protocol: str, decimals: int = ...) -> str: ...
    def format_retrieval_table(self, decimals: int = ...) -> str: ...
    def set_zero_shot(self, method: str, task: str, value: float) -> None: ...
    def zero_shot(self, method: str, task: str) -> Optional[float]: ...
    def format_zero_shot_table(self, decimals: int = ...) -> str: ...

def roc_auc(scores: torch.Tensor, targets: torch.Tensor) -> float:
    """Binary ROC-AUC (ties count one half)."""
def multilabel_roc_auc(scores: torch.Tensor, targets: torch.Tensor,
                       mask: Optional[torch.Tensor] = ...) -> Dict[str, object]:
    """Per-label AUC, their mean and the number of defined labels."""
def accuracy(predictions: torch.Tensor, targets: torch.Tensor) -> float:
    """Fraction of argmax predictions equal to the targets."""
def grouped_roc_auc(scores: torch.Tensor, targets: torch.Tensor, groups: torch.Tensor) -> float:
    """AUC after averaging scores per group (MURA patient level)."""
def group_mean(values: torch.Tensor, groups: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Mean of values per group."""
def precision_at_k(similarity: torch.Tensor, query_labels: torch.Tensor,
                   candidate_labels: torch.Tensor, k: int) -> float:
    """Precision@k of ranking candidates by similarity."""
def precision_at_ks(similarity: torch.Tensor, query_labels: torch.Tensor,
                    candidate_labels: torch.Tensor, ks: Sequence[int]) -> Dict[int, float]:
    """Precision@k for several k."""
def cosine_similarity_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[Q, C] cosine similarities."""
def retrieval_precision(query_emb: torch.Tensor, query_labels: torch.Tensor,
                        candidate_emb: torch.Tensor, candidate_labels: torch.Tensor,
                        ks: Sequence[int] = ...) -> Dict[str, object]:
    """Precision@k overall and per query category."""
def tsne(x: torch.Tensor, dims: int = ..., perplexity: float = ..., max_iterations: int = ...,
         learning_rate: float = ..., early_exaggeration: float = ..., exaggeration_iterations: int = ...,
         normalize: bool = ..., seed: int = ...) -> Tuple[torch.Tensor, float]:
    """Exact t-SNE: (embedding, final KL divergence)."""
def knn_label_agreement(points: torch.Tensor, labels: torch.Tensor, k: int) -> float:
    """Fraction of k nearest neighbours sharing a point's label."""
def render_scatter_svg(panels: Sequence[Tuple[str, torch.Tensor, torch.Tensor]], title: str = ...,
                       category_names: Sequence[str] = ...) -> str:
    """SVG text of side-by-side scatter panels."""
def write_scatter_svg(path: str, panels: Sequence[Tuple[str, torch.Tensor, torch.Tensor]],
                      title: str = ..., category_names: Sequence[str] = ...) -> None:
    """Writes render_scatter_svg(...) to path."""
def render_line_chart_svg(panels: Sequence[Dict[str, Any]], title: str = ...) -> str:
    """SVG text of side-by-side line charts with optional error bars."""
def write_line_chart_svg(path: str, panels: Sequence[Dict[str, Any]], title: str = ...) -> None:
    """Writes render_line_chart_svg(...) to path."""
def linear_probe(train: Sequence[Any], val: Sequence[Any], test: Sequence[Any], **options: Any) -> Dict[str, object]:
    """The linear protocol on precomputed features."""
def fraction_key(fraction: float) -> str:
    """The results key of a label fraction ("1", "10", "100": percent)."""
def summarize(values: Sequence[float]) -> Tuple[float, float]:
    """(mean, sample standard deviation)."""
def chexpert_8x200_categories() -> List[str]:
    """The eight retrieval categories."""
def evaluate(config: Optional[Mapping[str, Any]] = ...,
             callback: Optional[Callable[[Dict[str, Any]], Any]] = ...,
             **overrides: Any) -> Dict[str, Any]:
    """Runs the linear, fine-tuning or retrieval protocol from a config."""

__all__: List[str]

def default_prompts() -> Dict[str, Any]:
    """The built-in zero-shot prompts as {"labels": {LABEL: {"positive": [...], "negative": [...]}}}."""
def zero_shot(model: Union[str, "os.PathLike[str]"], dataset: str = ...,
              prompts: Optional[Union[str, "os.PathLike[str]", Mapping[str, Any]]] = ..., *,
              vocab: Union[str, "os.PathLike[str]"] = ..., test_csv: Union[str, "os.PathLike[str]"] = ...,
              image_root: Union[str, "os.PathLike[str]"] = ...,
              data_root: Union[str, "os.PathLike[str]"] = ..., labels: Sequence[str] = ...,
              uncertain: str = ..., mura_level: str = ..., skip_bad_rows: bool = ...,
              test_fraction: float = ...,
              split_seed: int = ..., method_name: str = ..., image_size: int = ...,
              batch_size: int = ..., workers: int = ..., threads: int = ...,
              out: Union[str, "os.PathLike[str]"] = ...) -> Dict[str, Any]:
    """Zero-shot classification of a labelled dataset's test split from text prompts."""
def embed(model: Union[str, "os.PathLike[str]"], out: Union[str, "os.PathLike[str]"], *,
          images: Union[str, "os.PathLike[str]"] = ..., texts: Union[str, "os.PathLike[str]"] = ...,
          features: Optional[str] = ..., vocab: Optional[Union[str, "os.PathLike[str]"]] = ...,
          image_column: Optional[str] = ..., image_root: Optional[Union[str, "os.PathLike[str]"]] = ...,
          image_size: Optional[int] = ..., batch_size: Optional[int] = ...,
          shard_size: Optional[int] = ..., threads: Optional[int] = ..., workers: Optional[int] = ...,
          progress: Optional[Callable[[Dict[str, Any]], None]] = ...) -> Dict[str, Any]:
    """Embeddings of an image folder / CSV and a text file into .safetensors or .npy; resumable."""
def search(index: Union[str, "os.PathLike[str]"], text: str = ...,
           image: Union[str, "os.PathLike[str]"] = ..., *, k: Optional[int] = ...,
           target: Optional[str] = ..., model: Optional[Union[str, "os.PathLike[str]"]] = ...,
           vocab: Optional[Union[str, "os.PathLike[str]"]] = ...) -> List[Dict[str, Any]]:
    """Nearest entries of an embeddings file to a text or image query (cosine, best first)."""
def write_npy(path: str, array: torch.Tensor) -> None:
    """Writes a tensor (float32/64, int64/32, uint8) as a NumPy .npy file, atomically."""
