"""ConVIRT pretraining from Python: the C++ trainer (``convirt::train::Pretrainer``) run with a config.

The run is C++ with the GIL released; ``callback(metrics)`` is called with a dict on every logged
step and every evaluation (return ``False`` to stop). Ctrl-C stops the run after the current step,
lets the trainer write its checkpoint (``out_dir/last.ckpt``), then raises ``KeyboardInterrupt``;
running the same config again resumes from that checkpoint. A resume must have the options recorded
in ``out_dir/run_options.json`` (a ``ValueError`` lists each difference); ``allow_option_change=True``
lets it change the budgets only (max_steps, max_evals, max_seconds, log_every, verbose, workers).

The pairs come from a MIMIC-CXR-JPG-layout root (``data``: splits "train" and "validate"; the
vocabulary is read from ``vocab``, default ``out_dir/vocab.txt``, or built there from the training
reports when that file does not exist), as
``convirt pretrain --data ROOT``, or from two CSV files (``train_csv``, ``val_csv`` and ``vocab``). The
command line's option names are accepted too (``out``, ``preset``, ``lr``, ``grad-clip``,
``image-to-text-weight``, ``no-resume``, ...), as is its config file's ``{"pretrain": {...}}`` nesting,
so one JSON file drives both.

Example::

    import convirt.train
    result = convirt.train.pretrain({
        "out_dir": "runs/demo", "data": "runs/synthetic/mimic-cxr-jpg",
        "model": "small", "max_steps": 2000, "eval_every": 200,
    }, callback=lambda m: print(m["step"], m["loss"]))
    result["model"], result["best_checkpoint"]
"""
from __future__ import annotations

import json
import os
from typing import Any, Callable, Dict, Mapping, Optional

from ._C import train as _train

__all__ = ["pretrain", "PRETRAIN_DEFAULTS", "PRETRAIN_ALIASES"]

#: Every config key with its default (``None``: required). Paths may be str or os.PathLike.
PRETRAIN_DEFAULTS: Dict[str, Any] = {
    "out_dir": None,          # checkpoints (last.ckpt, best.ckpt), metrics.jsonl, model.pt
    "data": "",               # MIMIC-CXR-JPG-layout root; or train_csv + val_csv
    "train_csv": "",          # CsvPairsDataset CSVs: image path(s) and report text per row
    "val_csv": "",
    "vocab": "",              # WordPiece vocab.txt (required with CSVs; with data: built if absent)
    "vocab_size": 2048,       # size of a vocabulary built from the corpus (data only)
    "image_size": 0,          # model input side in pixels; 0: the model config's (small 64)
    "threads": 0,             # intra-op threads; 0: leave as set (CONVIRT_NUM_THREADS / all cores)
    "model": "small",         # "small", "paper", or a ModelConfig as a dict / JSON string
    "image_column": "image",
    "text_column": "text",
    "augment": True,          # the paper's augmentation on training images
    "objective": "convirt",   # or "binary" (Contrastive-Binary baseline)
    "learning_rate": 1e-4,
    "weight_decay": 1e-6,
    "batch_size": 32,
    "temperature": 0.1,
    "image_to_text_weight": 0.75,
    "eval_every": 5000,
    "lr_patience": 5,
    "lr_decay": 0.5,
    "max_evals": 200,
    "max_steps": 0,
    "max_seconds": 0.0,
    "grad_clip_norm": 0.0,
    "precision": _train.DEFAULT_PRECISION,  # auto (bf16 on CUDA, fp32 on CPU) | fp32 | bf16 | fp16
    "max_bad_steps": 20,
    "max_length": 0,          # tokens per sentence; 0: the model config's (paper 128, small 64)
    "log_every": 20,
    "verbose": True,
    "seed": 0,
    "workers": 2,
    "resume": True,
    "device": _train.DEFAULT_DEVICE,  # auto (CUDA when present) | cpu | cuda | cuda:N
    "image_init": "",         # torchvision ResNet state_dict (.pth / .safetensors); paper: ImageNet
    "text_init": "",          # Hugging Face BERT folder (gives the vocabulary too); paper: ClinicalBERT
    "text_frozen_layers": -1, # BERT layers frozen with text_init, with the embeddings; -1: first half
    "allow_option_change": False,  # a resume may change only the budgets (max_steps, ...)
}

#: Command-line option names (``convirt pretrain --help``) and the config keys they stand for.
PRETRAIN_ALIASES: Dict[str, str] = {
    "out": "out_dir",
    "preset": "model",
    "lr": "learning_rate",
    "grad_clip": "grad_clip_norm",
}

_PATHS = ("out_dir", "data", "train_csv", "val_csv", "vocab", "image_init", "text_init")


def _normalize(config: Mapping[str, Any]) -> Dict[str, Any]:
    """Config keys as the bindings name them: the CLI's dashes and option names mapped, its
    ``{"pretrain": {...}}`` nesting and ``no_resume`` flag understood."""
    if set(config) == {"pretrain"} and isinstance(config["pretrain"], Mapping):
        config = config["pretrain"]
    out: Dict[str, Any] = {}
    for key, value in config.items():
        if not isinstance(key, str):
            raise TypeError(f"pretrain: config keys must be str, got {type(key).__name__}")
        k = key.replace("-", "_")
        if k == "no_resume":
            k, value = "resume", not value
        k = PRETRAIN_ALIASES.get(k, k)
        if k in out:
            raise ValueError(f"pretrain: config key {key!r} given twice (as {k!r})")
        out[k] = value
    return out


def pretrain(config: Optional[Mapping[str, Any]] = None,
             callback: Optional[Callable[[Dict[str, Any]], Optional[bool]]] = None,
             **overrides: Any) -> Dict[str, Any]:
    """Runs ConVIRT pretraining; keys as in :data:`PRETRAIN_DEFAULTS` (``overrides`` win over ``config``).

    Returns a dict: steps, evaluations, best_val_loss, best_step, skipped_steps, bad_samples,
    best_checkpoint, stop_reason, interrupted, model_config (JSON), model (``out_dir/model.pt``, the
    final weights, as ``convirt pretrain`` writes them; "" after an interrupt) and vocab.

    Raises:
        ValueError for an unknown or missing key (and the C++ checks' ValueError/TypeError);
        KeyboardInterrupt after a Ctrl-C, once the checkpoint is written; whatever the callback raised.
    """
    merged = _normalize(config or {})
    merged.update(_normalize(overrides))
    unknown = sorted(set(merged) - set(PRETRAIN_DEFAULTS))
    if unknown:
        raise ValueError(f"pretrain: unknown config keys {unknown}; known: {sorted(PRETRAIN_DEFAULTS)}")
    args = {k: merged.get(k, v) for k, v in PRETRAIN_DEFAULTS.items()}
    missing = [k for k, v in args.items() if v is None]
    if missing:
        raise ValueError(f"pretrain: missing required config keys {missing}")
    for key in _PATHS:
        args[key] = os.fspath(args[key])
    if isinstance(args["model"], Mapping):
        args["model"] = json.dumps(dict(args["model"]))
    args["device"] = str(args["device"])
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable or None, got {type(callback).__name__}")
    return _train.pretrain(callback=callback, **args)
