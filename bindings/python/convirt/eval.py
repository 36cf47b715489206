"""ConVIRT evaluation: the metrics, the linear protocol, zero-shot retrieval, t-SNE, Figure-3 style
plots and the results tables of the paper (values as fractions; tables and results.json in percent).

Example::

    import convirt.eval as ev
    auc = ev.roc_auc(torch.tensor([0.1, 0.4, 0.35, 0.8]), torch.tensor([0, 0, 1, 1]))  # 0.75
    r = ev.linear_probe((x_tr, y_tr), (x_va, y_va), (x_te, y_te), learning_rate=1e-3)
    print(r["test_metric"])

The paper's experiments from a config, as ``convirt eval linear|finetune|retrieval`` runs them::

    out = ev.evaluate({"model": "runs/demo/pretrain-convirt/model.pt", "protocol": "linear",
                       "dataset": "chexpert", "train_csv": ".../train.csv", "test_csv": ".../valid.csv",
                       "fractions": [0.1, 1.0], "seeds": 2}, callback=print)
    print(out["table"])

Zero-shot classification from text prompts, as ``convirt eval zeroshot`` runs it::

    r = ev.zero_shot("runs/demo/pretrain-convirt/model.pt", dataset="chexpert",
                     test_csv=".../valid.csv", prompts="prompts.json")
    print(r["metric_name"], r["metric"])

Embeddings of an image folder and a text file, and a text-to-image search over them, as
``convirt embed`` and ``convirt search`` run them::

    ev.embed("runs/demo/pretrain-convirt/model.pt", "emb.safetensors", images="scans/",
             texts="findings.txt")
    for hit in ev.search("emb.safetensors", text="pleural effusion", k=5):
        print(hit["rank"], hit["score"], hit["item"])
"""
from __future__ import annotations

import json
import os
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple

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
    "tsne", "knn_label_agreement", "render_scatter_svg", "write_scatter_svg",
    "render_line_chart_svg", "write_line_chart_svg", "linear_probe",
    "fraction_key", "summarize", "chexpert_8x200_categories", "evaluate", "EVALUATE_DEFAULTS",
    "PROTOCOLS", "zero_shot", "default_prompts", "embed", "search", "write_npy",
]

#: The protocols :func:`evaluate` runs.
PROTOCOLS: Tuple[str, ...] = ("linear", "finetune", "retrieval")

#: Every :func:`evaluate` config key with its default (``None``: required; "" / 0 / empty: the
#: paper's value or "not used"). Classification keys follow ``convirt::pipeline::EvaluateOptions``;
#: ``retrieval_dir``, ``vocab`` and ``ks`` are for the retrieval protocol; ``out`` writes results.json.
EVALUATE_DEFAULTS: Dict[str, Any] = {
    "model": None,              # convirt checkpoint (model.pt of convirt pretrain / train.pretrain)
    "protocol": "linear",       # "linear", "finetune" or "retrieval"
    "method_name": "",          # row name in the tables; "" = the checkpoint's file stem
    "dataset": "chexpert",      # "chexpert", "rsna", "covidx", "mura" (classification)
    "train_csv": "",            # CheXpert train.csv
    "test_csv": "",             # CheXpert test CSV (valid.csv)
    "image_root": "",           # folder the CSV paths are relative to (CheXpert, retrieval)
    "data_root": "",            # RSNA / COVIDx / MURA folder
    "labels": [],               # CheXpert label columns; empty = the paper's five
    "uncertain": "zeros",       # CheXpert uncertain labels: "zeros", "ones", "ignore"
    "mura_level": "patient",
    "skip_bad_rows": False,     # skip (and count) ragged or non-UTF-8 table rows instead of failing
    "val_fraction": 0.15,
    "test_fraction": 0.1,
    "split_seed": 0,
    "fractions": [],            # label fractions; empty = the paper's
    "seeds": 5,
    "first_seed": 0,
    "learning_rate": 0.0,       # 0 = the paper's
    "batch_size": 64,
    "max_epochs": 100,
    "max_steps": 0,
    "warmup_steps": 200,
    "warmup_learning_rate": 1e-3,
    "image_size": 0,            # 0 = the checkpoint's
    "data_mode": "auto",        # "auto", "memory", "stream"
    "max_memory_bytes": 4 << 30,
    "threads": 0,
    "workers": 2,
    "verbose": False,
    "retrieval_dir": "",        # 8x200-style folder (retrieval)
    "vocab": "",                # the model's vocab.txt: adds text->image retrieval
    "ks": [5, 10, 50],          # Precision@k of the retrieval protocol
    "out": "",                  # write the results (results.json format) here
}

#: Command-line option names of ``convirt eval`` and the keys they stand for.
_EVALUATE_ALIASES = {"name": "method_name", "model_path": "model"}
_EVALUATE_PATHS = ("model", "train_csv", "test_csv", "image_root", "data_root", "retrieval_dir",
                   "vocab", "out")
_RETRIEVAL_KEYS = ("model", "retrieval_dir", "image_root", "vocab", "method_name", "image_size",
                   "ks", "workers", "threads")


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


def render_line_chart_svg(panels: Sequence[Dict[str, Any]], title: str = "") -> str:
    """SVG text of side-by-side line charts with optional error bars.

    Each panel is a dict with "title", "x_label", "y_label", "log_x", "log_y" (all optional) and
    "series": a list of {"name", "x", "y", "err" (optional)}. Every point carries data-x / data-y /
    data-err attributes, so the figure can be read back.
    """
    return _C_eval.render_line_chart_svg(list(panels), title)


def write_line_chart_svg(path: str, panels: Sequence[Dict[str, Any]], title: str = "") -> None:
    """Writes render_line_chart_svg(...) to path."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(render_line_chart_svg(panels, title))


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


def _evaluate_config(config: Mapping[str, Any], overrides: Mapping[str, Any]) -> Dict[str, Any]:
    merged: Dict[str, Any] = {}
    for source in (config, overrides):
        for key, value in source.items():
            if not isinstance(key, str):
                raise TypeError(f"evaluate: config keys must be str, got {type(key).__name__}")
            k = key.replace("-", "_")
            merged[_EVALUATE_ALIASES.get(k, k)] = value
    unknown = sorted(set(merged) - set(EVALUATE_DEFAULTS))
    if unknown:
        raise ValueError(f"evaluate: unknown config keys {unknown}; known: {sorted(EVALUATE_DEFAULTS)}")
    args = {k: merged.get(k, v) for k, v in EVALUATE_DEFAULTS.items()}
    if args["model"] is None:
        raise ValueError("evaluate: missing required config key 'model' (a convirt checkpoint)")
    if args["protocol"] not in PROTOCOLS:
        raise ValueError(f"evaluate: protocol must be one of {list(PROTOCOLS)}, got {args['protocol']!r}")
    for key in _EVALUATE_PATHS:
        args[key] = os.fspath(args[key])
    args["labels"] = [str(x) for x in args["labels"]]
    args["fractions"] = [float(x) for x in args["fractions"]]
    args["ks"] = [int(x) for x in args["ks"]]
    return args


def evaluate(config: Optional[Mapping[str, Any]] = None,
             callback: Optional[Callable[[Dict[str, Any]], Any]] = None,
             **overrides: Any) -> Dict[str, Any]:
    """Runs one of the paper's evaluation protocols on a pretrained checkpoint, from a config.

    ``protocol`` "linear" or "finetune": ``convirt::pipeline::evaluate``, a label-fraction x seed sweep
    on CheXpert, RSNA, COVIDx or MURA (Table 1); ``callback(run)`` gets a dict after each run
    (method, task, protocol, fraction, seed, run, total_runs, metric, train_examples, streamed,
    bad_images, seconds). ``protocol`` "retrieval": zero-shot Precision@k on an 8x200-style set (Table 2),
    image->image and, with ``vocab``, text->image; ``callback`` is not called. Keys as in
    :data:`EVALUATE_DEFAULTS` (``overrides`` win; ``convirt eval`` option names work too).

    The C++ work runs with the GIL released. Ctrl-C stops a sweep after the current run and raises
    ``KeyboardInterrupt``; an exception raised by the callback stops it and is re-raised.

    Returns a dict: ``results`` (:class:`Results`, cells in percent), ``table`` (the Markdown table),
    ``out`` (the results.json written, or "").
    """
    args = _evaluate_config(config or {}, overrides)
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable or None, got {type(callback).__name__}")
    out = args.pop("out")
    if args["protocol"] == "retrieval":
        if not args["retrieval_dir"]:
            raise ValueError("evaluate: protocol 'retrieval' needs retrieval_dir (an 8x200-style folder)")
        results = _C_eval.evaluate_retrieval(**{k: args[k] for k in _RETRIEVAL_KEYS})
        table = results.format_retrieval_table()
    else:
        classification = {k: v for k, v in args.items()
                          if k not in ("retrieval_dir", "vocab", "ks")}
        results = _C_eval.evaluate_classification(classification, callback)
        table = results.format_classification_table(args["protocol"])
    if out:
        results.save(out)
    return {"results": results, "table": table, "out": out}


def default_prompts() -> Dict[str, Any]:
    """The built-in zero-shot prompts (``resources/prompts/default.json``) as a dict
    ``{"labels": {LABEL: {"positive": [...], "negative": [...]}}}``; a copy to edit and pass to
    :func:`zero_shot`."""
    return json.loads(_C_eval.default_prompts_json())


def zero_shot(model: "os.PathLike[str] | str", dataset: str = "chexpert",
              prompts: "Optional[os.PathLike[str] | str | Mapping[str, Any]]" = None, *,
              vocab: "os.PathLike[str] | str" = "", test_csv: "os.PathLike[str] | str" = "",
              image_root: "os.PathLike[str] | str" = "", data_root: "os.PathLike[str] | str" = "",
              labels: Sequence[str] = (), uncertain: str = "zeros", mura_level: str = "patient",
              skip_bad_rows: bool = False, test_fraction: float = 0.1, split_seed: int = 0, method_name: str = "",
              image_size: int = 0, batch_size: int = 64, workers: int = 2, threads: int = 0,
              out: "os.PathLike[str] | str" = "") -> Dict[str, Any]:
    """Zero-shot classification of a labelled dataset's test split from text prompts
    (``convirt::pipeline::zero_shot``, as ``convirt eval zeroshot``): each label's prompts are
    embedded by the model's text encoder and averaged; images are scored by cosine similarity
    (binary labels: positive minus negative prompts). No label is used except for the metric.

    ``dataset`` is "chexpert" (mean AUC, needs ``test_csv``), "rsna" (AUC), "covidx" (accuracy) or
    "mura" (patient-level AUC), the last three with ``data_root``. ``prompts`` is a prompt file, a
    dict in its format (see :func:`default_prompts`) or None for the built-in prompts. ``vocab``
    defaults to the vocab.txt beside the checkpoint or in the folder above it. ``skip_bad_rows``
    skips and counts ragged or non-UTF-8 table rows instead of refusing the table.

    Returns a dict: ``method``, ``task``, ``metric_name``, ``metric`` (in [0, 1]), ``labels``,
    ``per_label`` (AUC per label), ``images``, ``results`` (:class:`Results` with a "zeroshot"
    section, in percent), ``table`` (Markdown) and ``out`` (the results.json written, or "").
    """
    prompts_path, prompts_json = "", ""
    if isinstance(prompts, (str, os.PathLike)):
        prompts_path = os.fspath(prompts)
    elif isinstance(prompts, Mapping):
        prompts_json = json.dumps(prompts)
    elif prompts is not None:
        raise TypeError(f"zero_shot: prompts must be a path, a dict or None, got {type(prompts).__name__}")
    r = _C_eval.zero_shot(model=os.fspath(model), dataset=dataset, prompts_path=prompts_path,
                          prompts_json=prompts_json, vocab=os.fspath(vocab),
                          test_csv=os.fspath(test_csv), image_root=os.fspath(image_root),
                          data_root=os.fspath(data_root), labels=[str(x) for x in labels],
                          uncertain=uncertain, mura_level=mura_level,
                          skip_bad_rows=bool(skip_bad_rows), test_fraction=float(test_fraction), split_seed=int(split_seed),
                          method_name=method_name, image_size=int(image_size),
                          batch_size=int(batch_size), workers=int(workers), threads=int(threads))
    out = os.fspath(out)
    if out:
        r["results"].save(out)
    r["out"] = out
    return r


write_npy = _C_eval.write_npy


def embed(model: "os.PathLike[str] | str", out: "os.PathLike[str] | str", *,
          images: "os.PathLike[str] | str" = "", texts: "os.PathLike[str] | str" = "",
          features: Optional[str] = None, vocab: "Optional[os.PathLike[str] | str]" = None,
          image_column: Optional[str] = None, image_root: "Optional[os.PathLike[str] | str]" = None,
          image_size: Optional[int] = None, batch_size: Optional[int] = None,
          shard_size: Optional[int] = None, threads: Optional[int] = None,
          workers: Optional[int] = None,
          progress: Optional[Callable[[Dict[str, Any]], None]] = None) -> Dict[str, Any]:
    """Embeddings of images and/or texts into one file (``convirt::pipeline::embed``, as
    ``convirt embed``).

    ``images`` is a folder (searched recursively for .png/.jpg/.jpeg/.dcm, sorted) or a CSV of paths
    (``image_column``, relative to ``image_root`` or the CSV's folder); ``texts`` a file with one text
    per line. ``out`` ends in .safetensors (tensors ``image_embeddings``, ``text_embeddings`` and/or
    ``image_features``, ``text_features``, with the paths and texts in its metadata) or .npy (one array
    per file and a JSON sidecar). ``features``: "projected" (default; what :func:`search` uses),
    "encoder" or "both". Work is saved in shards of ``shard_size`` rows under ``<out>.parts``: a
    re-run after an interruption resumes there, and one with another model or input list is refused.
    ``progress`` is called with {"kind", "done", "total", "resumed"} after every batch. Options left
    at None take the library's defaults (``convirt embed --help`` shows them).

    Returns {"files", "image_paths", "texts", "skipped", "tensors", "resumed"}.
    """
    def opt(v):
        return None if v is None else os.fspath(v)

    return _C_eval.embed(model=os.fspath(model), out=os.fspath(out), images=os.fspath(images),
                         texts=os.fspath(texts), features=features, vocab=opt(vocab),
                         image_column=image_column, image_root=opt(image_root),
                         image_size=image_size, batch_size=batch_size, shard_size=shard_size,
                         threads=threads, workers=workers, progress=progress)


def search(index: "os.PathLike[str] | str", text: str = "", image: "os.PathLike[str] | str" = "", *,
           k: Optional[int] = None, target: Optional[str] = None,
           model: "Optional[os.PathLike[str] | str]" = None,
           vocab: "Optional[os.PathLike[str] | str]" = None) -> "list[Dict[str, Any]]":
    """The ``k`` entries (default 10) of an :func:`embed` file nearest to a text or an image query by
    cosine similarity of projected embeddings (``convirt::pipeline::search``, as ``convirt search``).

    ``target`` is "images" (default) or "texts"; ``model`` defaults to the checkpoint the index
    records and must be the one that wrote it. Returns a list of {"rank", "score", "index", "item"},
    best first (``item``: the image path or text).
    """
    return _C_eval.search(index=os.fspath(index), text=text, image=os.fspath(image), k=k,
                          target=target, model=None if model is None else os.fspath(model),
                          vocab=None if vocab is None else os.fspath(vocab))
