"""ConVIRT pretraining from Python: the library's one pretraining pipeline (``convirt::pipeline::pretrain``,
the call behind ``convirt pretrain`` and the main job) run with a config.

The run is C++ with the GIL released; ``callback(metrics)`` is called with a dict on every logged
step and every evaluation (return ``False`` to stop). Ctrl-C stops the run after the current step,
lets the trainer write its checkpoint (``out_dir/last.ckpt``), then raises ``KeyboardInterrupt``;
running the same config again resumes from that checkpoint. A resume must have the options recorded
in ``out_dir/run_options.json`` (a ``ValueError`` lists each difference); ``allow_option_change=True``
lets it change the budgets only (max_steps, max_evals, max_seconds, log_every, verbose, workers,
max_bad_fraction). A second run on the same ``out_dir`` while one holds it fails at once.

The pairs come from a MIMIC-CXR-JPG-layout root (``data``: splits "train" and "validate") or from two
CSV files (``train_csv``, ``val_csv``). The vocabulary is ``vocab`` when given, the BERT folder's with
``text_init``, else one built from the training reports into ``out_dir/vocab.txt`` (reused by a
later run); it is embedded in the saved model too. Skipped pairs are listed in ``out_dir/skipped.tsv``. The
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

#: Every config key with its default (``None``: required), read from the C++ ``PretrainJob`` (the one
#: place the defaults live; ``convirt pretrain --help`` shows the same). Paths may be str or
#: os.PathLike; ``model`` may also be a ModelConfig dict.
PRETRAIN_DEFAULTS: Dict[str, Any] = {**json.loads(_train.pretrain_defaults()), "out_dir": None}

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
    final weights, as ``convirt pretrain`` writes them; "" after an interrupt), vocab and skipped
    (``out_dir/skipped.tsv``).

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
    elif isinstance(args["model"], os.PathLike):
        args["model"] = os.fspath(args["model"])
    args["device"] = str(args["device"])
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable or None, got {type(callback).__name__}")
    return _train.pretrain(json.dumps(args), callback)
