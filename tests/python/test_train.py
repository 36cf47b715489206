"""convirt.train.pretrain: the C++ trainer from Python, with a metrics callback and Ctrl-C handling.

Run: PYTHONPATH=build/python /usr/bin/python3 -m pytest tests/python/test_train.py
"""
import csv
import os
import signal
import threading

import pytest
import torch

train = pytest.importorskip("convirt.train")
ci = pytest.importorskip("convirt.image")
ct = pytest.importorskip("convirt.text")

FINDINGS = ["left effusion", "right opacity", "enlarged heart", "clear lungs"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """16 toy pairs: a PNG whose blob position depends on the finding, and a sectioned report."""
    root = tmp_path_factory.mktemp("pairs")
    rows = []
    g = torch.Generator().manual_seed(0)
    for i in range(16):
        k = i % len(FINDINGS)
        img = 0.2 * torch.rand(1, 40, 48, generator=g)
        img[:, 8:20, 4 + 10 * k:14 + 10 * k] += 0.7
        path = root / f"img{i}.png"
        ci.write_png(path, img.clamp(0, 1))
        rows.append({"image": path.name,
                     "text": f"FINDINGS: There is {FINDINGS[k]} seen today. IMPRESSION: {FINDINGS[k]}."})
    for name, part in (("train.csv", rows[:12]), ("val.csv", rows[12:])):
        with open(root / name, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["image", "text"])
            w.writeheader()
            w.writerows(part)
    vocab = ct.build_wordpiece_vocab([r["text"] for r in rows], vocab_size=120, min_frequency=1)
    ct.save_vocab(vocab, str(root / "vocab.txt"))
    return root


def config(corpus, out_dir, **kw):
    c = dict(out_dir=out_dir, train_csv=corpus / "train.csv", val_csv=corpus / "val.csv",
             vocab=corpus / "vocab.txt", model="small", batch_size=4, eval_every=2, max_steps=4,
             log_every=1, workers=0, verbose=False, learning_rate=1e-3)
    c.update(kw)
    return c


def test_pretrain_runs_and_reports_metrics(corpus, tmp_path):
    seen = []
    result = train.pretrain(config(corpus, tmp_path / "run"), callback=seen.append)
    assert result["steps"] == 4 and result["evaluations"] >= 2
    assert not result["interrupted"]
    steps = [m for m in seen if not m["is_eval"]]
    evals = [m for m in seen if m["is_eval"]]
    assert steps and evals
    assert all(torch.isfinite(torch.tensor(m["loss"])) for m in steps)
    assert all("val_loss" in m for m in evals)
    assert os.path.exists(result["best_checkpoint"])
    assert os.path.exists(tmp_path / "run" / "last.ckpt")


def test_callback_can_stop_and_errors_propagate(corpus, tmp_path):
    result = train.pretrain(config(corpus, tmp_path / "a", max_steps=50),
                            callback=lambda m: m["step"] < 2)
    assert result["steps"] < 50

    def boom(m):
        raise ValueError("stop from the callback")

    with pytest.raises(ValueError, match="stop from the callback"):
        train.pretrain(config(corpus, tmp_path / "b", max_steps=50), callback=boom)


def test_ctrl_c_leaves_a_checkpoint_and_resumes(corpus, tmp_path):
    out = tmp_path / "run"
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            train.pretrain(config(corpus, out, max_steps=100000, eval_every=100000))
    finally:
        timer.cancel()
    assert os.path.exists(out / "last.ckpt")
    resumed = train.pretrain(config(corpus, out, max_steps=3, eval_every=100000))
    assert resumed["steps"] >= 1


def test_config_errors(corpus, tmp_path):
    with pytest.raises(ValueError, match="unknown config keys \\['lr'\\]"):
        train.pretrain(config(corpus, tmp_path, lr=0.1))
    with pytest.raises(ValueError, match="missing required config keys \\['vocab'\\]"):
        train.pretrain(config(corpus, tmp_path, vocab=None))
    with pytest.raises(ValueError, match="objective"):
        train.pretrain(config(corpus, tmp_path, objective="triplet"))
    with pytest.raises(TypeError, match="callback must be callable"):
        train.pretrain(config(corpus, tmp_path), callback=3)
    with pytest.raises((ValueError, RuntimeError), match="nope.txt"):
        train.pretrain(config(corpus, tmp_path, vocab=tmp_path / "nope.txt"))
