"""ConVIRT evaluation: the metrics, the linear protocol, zero-shot retrieval, t-SNE, Figure-3 style
plots and the results tables of the paper (values as fractions; tables and results.json in percent).

Example::

    import convirt.eval as ev
    auc = ev.roc_auc(torch.tensor([0.1, 0.4, 0.35, 0.8]), torch.tensor([0, 0, 1, 1]))  # 0.75
    r = ev.linear_probe((x_tr, y_tr), (x_va, y_va), (x_te, y_te), learning_rate=1e-3)
    print(r["test_metric"])
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import torch

from ._C import eval as _C_eval

Results = _C_eval.Results
roc_auc = _C_eval.roc_auc
accuracy = _C_eval.accuracy
grouped_roc_auc = _C_eval.grouped_roc_auc
group_mean = _C_eval.group_mean
precision_at_k = _C_eval.precision_at_k
precision_at_ks = _C_eval.precision_at_ks
cosine_similarity_matrix = _C_eval.cosine_similarity_matrix
knn_label_agreement = _C_eval.knn_label_agreement
fraction_key = _C_eval.fraction_key
summarize = _C_eval.summarize
chexpert_8x200_categories = _C_eval.chexpert_8x200_categories

__all__ = [
    "Results", "roc_auc", "multilabel_roc_auc", "accuracy", "grouped_roc_auc", "group_mean",
    "precision_at_k", "precision_at_ks", "cosine_similarity_matrix", "retrieval_precision",
    "tsne", "knn_label_agreement", "render_scatter_svg", "write_scatter_svg", "linear_probe",
    "fraction_key", "summarize", "chexpert_8x200_categories",
]


def multilabel_roc_auc(scores: torch.Tensor, targets: torch.Tensor,
                       mask: Optional[torch.Tensor] = None) -> Dict[str, object]:
    """Per-label AUC (NaN where a label has one class only) and their mean, with an optional mask
    (nonzero = keep) for unknown labels."""
    per_label, mean, defined = _C_eval.multilabel_roc_auc(scores, targets, mask)
    return {"per_label": per_label, "mean": mean, "defined_labels": defined}


def retrieval_precision(query_emb: torch.Tensor, query_labels: torch.Tensor,
                        candidate_emb: torch.Tensor, candidate_labels: torch.Tensor,
                        ks: Sequence[int] = (5, 10, 50)) -> Dict[str, object]:
    """Precision@k of ranking candidates by cosine similarity, overall and per query category."""
    precision, per_category = _C_eval.retrieval_precision(query_emb, query_labels, candidate_emb,
                                                          candidate_labels, list(ks))
    return {"precision": precision, "per_category": per_category}


def tsne(x: torch.Tensor, dims: int = 2, perplexity: float = 30.0, max_iterations: int = 1000,
         learning_rate: float = 0.0, early_exaggeration: float = 12.0,
         exaggeration_iterations: int = 250, normalize: bool = False,
         seed: int = 0) -> Tuple[torch.Tensor, float]:
    """Exact t-SNE of the rows of x: (embedding [N, dims] float64, final KL divergence)."""
    return _C_eval.tsne(x, dims, perplexity, max_iterations, learning_rate, early_exaggeration,
                        exaggeration_iterations, normalize, seed)


def render_scatter_svg(panels: Sequence[Tuple[str, torch.Tensor, torch.Tensor]], title: str = "",
                       category_names: Sequence[str] = ()) -> str:
    """SVG text of side-by-side scatter panels (title, points [N, 2], labels [N])."""
    return _C_eval.render_scatter_svg(list(panels), title, list(category_names))


def write_scatter_svg(path: str, panels: Sequence[Tuple[str, torch.Tensor, torch.Tensor]],
                      title: str = "", category_names: Sequence[str] = ()) -> None:
    """Writes render_scatter_svg(...) to path."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(render_scatter_svg(panels, title, category_names))


def _split(s) -> tuple:
    s = tuple(s)
    if len(s) < 2 or len(s) > 4:
        raise ValueError(f"a split is (inputs, targets[, mask[, groups]]), got {len(s)} items")
    return s + (None,) * (4 - len(s))


def linear_probe(train, val, test, **options) -> Dict[str, object]:
    """The linear protocol on precomputed features. Each split is (inputs, targets[, mask[, groups]]).
    Options (defaults = the paper's recipe): task ("multilabel" | "multiclass"), metric, learning_rate,
    weight_decay, dropout, batch_size, lr_patience, lr_decay, early_stop_patience, max_epochs,
    max_steps, seed, num_threads."""
    return _C_eval.linear_probe(_split(train), _split(val), _split(test), **options)
