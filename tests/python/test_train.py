"""convirt.train.pretrain: the C++ trainer from Python, with a metrics callback and Ctrl-C handling.

Run: PYTHONPATH=build/python /usr/bin/python3 -m pytest tests/python/test_train.py
"""
import csv
import json
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
    # A smaller step budget is a change of budget only: allowed when asked for.
    resumed = train.pretrain(config(corpus, out, max_steps=3, eval_every=100000,
                                    allow_option_change=True))
    assert resumed["steps"] >= 1


def test_resume_with_changed_options_is_refused(corpus, tmp_path):
    out = tmp_path / "run"
    first = train.pretrain(config(corpus, out, max_steps=2))
    assert first["steps"] == 2
    recorded = json.loads((out / "run_options.json").read_text())
    assert recorded["learning_rate"] == 1e-3 and recorded["batch_size"] == 4
    with pytest.raises(ValueError, match=r"learning_rate: recorded 0\.001, now 0\.01"):
        train.pretrain(config(corpus, out, max_steps=2, learning_rate=1e-2))
    with pytest.raises(ValueError, match=r"max_steps: recorded 2, now 3"):
        train.pretrain(config(corpus, out, max_steps=3))
    # The flag allows budgets only: a changed temperature still refuses, a longer run continues.
    with pytest.raises(ValueError, match=r"temperature: recorded 0\.1, now 0\.2"):
        train.pretrain(config(corpus, out, max_steps=3, temperature=0.2, allow_option_change=True))
    again = train.pretrain(config(corpus, out, max_steps=3, allow_option_change=True))
    assert again["steps"] == 3
    assert json.loads((out / "run_options.json").read_text())["max_steps"] == 3


def test_config_errors(corpus, tmp_path):
    with pytest.raises(ValueError, match="unknown config keys \\['lrate'\\]"):
        train.pretrain(config(corpus, tmp_path, lrate=0.1))
    with pytest.raises(ValueError, match="missing required config keys \\['out_dir'\\]"):
        train.pretrain(config(corpus, None))
    with pytest.raises(TypeError, match="batch_size must be an integer"):
        train.pretrain(config(corpus, tmp_path, batch_size=4.5))
    with pytest.raises(ValueError, match="not both"):
        train.pretrain(config(corpus, tmp_path, data=corpus))
    with pytest.raises(ValueError, match="given twice"):
        train.pretrain(config(corpus, tmp_path, lr=0.1))  # config() sets learning_rate
    with pytest.raises(ValueError, match="objective"):
        train.pretrain(config(corpus, tmp_path, objective="triplet"))
    with pytest.raises(TypeError, match="callback must be callable"):
        train.pretrain(config(corpus, tmp_path), callback=3)
    with pytest.raises((ValueError, RuntimeError), match="nope.txt"):
        train.pretrain(config(corpus, tmp_path, vocab=tmp_path / "nope.txt"))


def test_optimizer_is_an_option_recorded_with_the_run(corpus, tmp_path):
    assert train.PRETRAIN_DEFAULTS["optimizer"] == "adam"
    out = tmp_path / "sgd"
    result = train.pretrain(config(corpus, out, optimizer="sgd", max_steps=2))
    assert result["steps"] == 2
    assert json.loads((out / "run_options.json").read_text())["optimizer"] == "sgd"
    # A resume with another optimiser is refused, naming it.
    with pytest.raises(ValueError, match='optimizer: recorded "sgd", now "adamw"'):
        train.pretrain(config(corpus, out, optimizer="adamw", max_steps=4))
    with pytest.raises(ValueError, match="optimizer must be 'adam', 'adamw' or 'sgd', got 'lbfgs'"):
        train.pretrain(config(corpus, tmp_path / "x", optimizer="lbfgs"))


@pytest.fixture(scope="module")
def mimic_root(tmp_path_factory):
    data = pytest.importorskip("convirt.data")
    out = tmp_path_factory.mktemp("mimic")
    summary = data.generate_synthetic(out, train_studies=16, validate_studies=4, test_studies=1,
                                      chexpert_train=1, chexpert_valid=1, retrieval_candidates=1,
                                      retrieval_image_queries=1, retrieval_text_queries=1,
                                      image_size=32, seed=1, threads=2)
    return summary["mimic_root"]


def test_pretrain_from_mimic_root_with_cli_keys(mimic_root, tmp_path):
    """The keys of `convirt pretrain --data ROOT` (its config-file form): vocabulary built from the
    corpus, the small model sized to it, model.pt written at the end."""
    models = pytest.importorskip("convirt.models")
    out = tmp_path / "run"
    seen = []
    cli_config = {"pretrain": {"data": str(mimic_root), "out": str(out), "preset": "small",
                               "vocab-size": 150, "image-size": 32, "batch-size": 4, "max-steps": 3,
                               "eval-every": 2, "log-every": 1, "workers": 0, "lr": 1e-3,
                               "threads": 1}}
    result = train.pretrain(cli_config, callback=seen.append, verbose=False)
    assert result["steps"] == 3 and not result["interrupted"]
    assert result["vocab"] == str(out / "vocab.txt")
    vocab = (out / "vocab.txt").read_text().splitlines()
    assert 20 < len(vocab) <= 150
    model = models.load(result["model"])
    cfg = models.read_config(result["model"])
    assert cfg["bert"]["config"]["vocab_size"] == len(vocab)
    assert model.output_dim > 0 and any(m["is_eval"] for m in seen)
    # Resuming with the built vocabulary reuses it (same file, same ids).
    again = train.pretrain(cli_config, verbose=False, max_steps=4, allow_option_change=True)
    assert again["steps"] == 4 and (out / "vocab.txt").read_text().splitlines() == vocab


def test_csv_pairs_build_their_vocabulary_and_the_model_carries_it(corpus, tmp_path):
    """Without ``vocab`` the CSV run builds one from its training reports, as a MIMIC root does; the
    saved model carries it, and the skipped-pairs list is written even when nothing was skipped."""
    import convirt.models as cm

    out = tmp_path / "run"
    result = train.pretrain(config(corpus, out, vocab="", vocab_size=100))
    assert result["vocab"] == str(out / "vocab.txt")
    tokens = (out / "vocab.txt").read_text().splitlines()
    assert 10 < len(tokens) <= 100
    assert result["skipped"] == str(out / "skipped.tsv")
    assert (out / "skipped.tsv").read_text() == "split\tstage\tpath\treason\n"
    assert json.loads(result["model_config"])["bert"]["config"]["vocab_size"] == len(tokens)
    assert cm.read_vocabulary(result["model"]) == tokens


def test_pretrain_from_missing_root(tmp_path):
    with pytest.raises(ValueError, match="nothing"):
        train.pretrain(out_dir=tmp_path / "o", data=tmp_path / "nothing", verbose=False)


def test_defaults_and_cli_aliases():
    assert train.PRETRAIN_DEFAULTS["out_dir"] is None and train.PRETRAIN_DEFAULTS["data"] == ""
    # One source of defaults: the C++ PretrainJob, which `convirt pretrain --help` shows too.
    from convirt import _C

    cpp = json.loads(_C.train.pretrain_defaults())
    assert set(cpp) == set(train.PRETRAIN_DEFAULTS)
    assert {k: v for k, v in cpp.items() if k != "out_dir"} == \
        {k: v for k, v in train.PRETRAIN_DEFAULTS.items() if k != "out_dir"}
    assert cpp["eval_every"] == 5000 and cpp["max_evals"] == 200 and cpp["image_to_text_weight"] == 0.75
    for cli, key in train.PRETRAIN_ALIASES.items():
        assert key in train.PRETRAIN_DEFAULTS, (cli, key)


def test_pretrain_on_two_ranks_under_the_launcher(mimic_root, tmp_path):
    """`convirt.train.pretrain` joins the job the torchrun variables describe: two ranks share the
    vocabulary rank 0 builds, train in lockstep, and only rank 0 writes model.pt and the metrics."""
    import json
    import subprocess  # noqa: F401  (the launcher forks; nothing else needed)
    import sys

    import convirt
    dist = pytest.importorskip("convirt.dist")
    if not dist.gloo_available():
        pytest.skip("this build of convirt.dist has no Gloo")
    out = tmp_path / "run"
    script = tmp_path / "rank.py"
    script.write_text(
        "import json, os, sys\n"
        "import convirt\n"
        f"r = convirt.train.pretrain(data={str(mimic_root)!r}, out_dir={str(out)!r}, model='small',\n"
        "    vocab_size=150, image_size=32, batch_size=2, max_steps=3, eval_every=3, log_every=1,\n"
        "    workers=0, threads=1, learning_rate=1e-3, verbose=False)\n"
        f"json.dump(r, open({str(tmp_path)!r} + '/rank' + os.environ['RANK'] + '.json', 'w'))\n")
    env_before = dict(os.environ)
    os.environ["PYTHONPATH"] = os.path.dirname(os.path.dirname(convirt.__file__))
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["CONVIRT_DIST_TIMEOUT"] = "60"
    try:
        rc = dist.launch([sys.executable, str(script)], nproc=2)
    finally:
        os.environ.clear()
        os.environ.update(env_before)
    assert rc == 0
    r0 = json.load(open(tmp_path / "rank0.json"))
    r1 = json.load(open(tmp_path / "rank1.json"))
    assert r0["steps"] == r1["steps"] == 3
    assert r0["best_val_loss"] == pytest.approx(r1["best_val_loss"], rel=1e-6)
    assert r0["model"] == str(out / "model.pt") and (out / "model.pt").exists()
    assert r1["model"] == ""
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert any(rec.get("world_size") == 2 for rec in records)
