"""The paper's initialisation (ImageNet ResNet, ClinicalBERT-style HF folder), device and precision
options of convirt.train.pretrain and `convirt pretrain`.

The ResNet file is written by torchvision itself; the BERT folder in the exact layout Hugging Face
writes for BertForPreTraining checkpoints such as ClinicalBERT ("bert." prefix, pretraining heads,
position_ids buffer, pytorch_model.bin, config.json, vocab.txt, tokenizer_config.json).

Run: PYTHONPATH=build/python /usr/bin/python3 -m pytest tests/python/test_train_init.py
"""
import csv
import hashlib
import json
import os
import pathlib
import subprocess

import pytest
import torch

train = pytest.importorskip("convirt.train")
cm = pytest.importorskip("convirt.models")
ci = pytest.importorskip("convirt.image")
ct = pytest.importorskip("convirt.text")
try:
    import torchvision
except ImportError:
    torchvision = None

needs_tv = pytest.mark.skipif(torchvision is None, reason="torchvision is not installed")
FINDINGS = ["left effusion", "right opacity", "enlarged heart", "clear lungs"]
HIDDEN, LAYERS, HEADS, INTER, POSITIONS = 16, 2, 2, 32, 40


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """16 grey toy pairs as CSVs and a WordPiece vocabulary built from their reports."""
    root = tmp_path_factory.mktemp("pairs")
    rows = []
    g = torch.Generator().manual_seed(0)
    for i in range(16):
        k = i % len(FINDINGS)
        img = 0.2 * torch.rand(1, 40, 48, generator=g)
        img[:, 8:20, 4 + 10 * k:14 + 10 * k] += 0.7
        ci.write_png(root / f"img{i}.png", img.clamp(0, 1))
        rows.append({"image": f"img{i}.png",
                     "text": f"FINDINGS: There is {FINDINGS[k]} seen today. IMPRESSION: {FINDINGS[k]}."})
    for name, part in (("train.csv", rows[:12]), ("val.csv", rows[12:])):
        with open(root / name, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["image", "text"])
            w.writeheader()
            w.writerows(part)
    vocab = ct.build_wordpiece_vocab([r["text"] for r in rows], vocab_size=120, min_frequency=1)
    ct.save_vocab(vocab, str(root / "vocab.txt"))
    return root


def run_config(corpus, out_dir, **kw):
    c = dict(out_dir=out_dir, train_csv=corpus / "train.csv", val_csv=corpus / "val.csv",
             model="small", batch_size=4, eval_every=2, max_steps=4, log_every=1, workers=0,
             verbose=False, learning_rate=1e-3, image_size=32, device="cpu")
    c.update(kw)
    if "text_init" not in c:
        c.setdefault("vocab", corpus / "vocab.txt")
    return c


def untrained(corpus, out_dir, **kw):
    """A run that stops before its first step: model.pt then holds the initial weights exactly
    (training would move BatchNorm's running statistics even at learning rate 0)."""
    return train.pretrain(run_config(corpus, out_dir, max_steps=0, max_evals=0, max_seconds=1e-9,
                                     **kw))


@pytest.fixture(scope="module")
def resnet18_pth(tmp_path_factory):
    """torchvision's own resnet18 state_dict, with non-trivial BatchNorm statistics."""
    if torchvision is None:
        pytest.skip("torchvision is not installed")
    torch.manual_seed(3)
    net = torchvision.models.resnet18()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
    path = tmp_path_factory.mktemp("tv") / "resnet18.pth"
    torch.save(net.state_dict(), path)
    return path


def hf_bert_folder(path, vocab_file, lower=True, layers=LAYERS, seed=0):
    """A BERT folder as Hugging Face's save_pretrained writes a BertForPreTraining checkpoint."""
    path.mkdir(parents=True, exist_ok=True)
    vocab = pathlib.Path(vocab_file).read_text().splitlines()
    v = len(vocab)
    config = {
        "architectures": ["BertForPreTraining"], "attention_probs_dropout_prob": 0.1,
        "classifier_dropout": None, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
        "hidden_size": HIDDEN, "initializer_range": 0.02, "intermediate_size": INTER,
        "layer_norm_eps": 1e-12, "max_position_embeddings": POSITIONS, "model_type": "bert",
        "num_attention_heads": HEADS, "num_hidden_layers": layers, "pad_token_id": 0,
        "position_embedding_type": "absolute", "torch_dtype": "float32",
        "transformers_version": "4.36.2", "type_vocab_size": 2, "use_cache": True, "vocab_size": v,
    }
    (path / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    (path / "tokenizer_config.json").write_text(json.dumps(
        {"do_lower_case": lower, "model_max_length": 512, "tokenizer_class": "BertTokenizer",
         "unk_token": "[UNK]", "pad_token": "[PAD]", "cls_token": "[CLS]", "sep_token": "[SEP]",
         "mask_token": "[MASK]", "strip_accents": None, "tokenize_chinese_chars": True}))
    g = torch.Generator().manual_seed(seed)
    r = lambda *shape: 0.1 * torch.randn(*shape, generator=g)
    sd = {
        "bert.embeddings.word_embeddings.weight": r(v, HIDDEN),
        "bert.embeddings.position_embeddings.weight": r(POSITIONS, HIDDEN),
        "bert.embeddings.token_type_embeddings.weight": r(2, HIDDEN),
        "bert.embeddings.LayerNorm.weight": 1 + r(HIDDEN),
        "bert.embeddings.LayerNorm.bias": r(HIDDEN),
        "bert.embeddings.position_ids": torch.arange(POSITIONS).unsqueeze(0),
    }
    for i in range(layers):
        p = f"bert.encoder.layer.{i}."
        for name in ("attention.self.query", "attention.self.key", "attention.self.value",
                     "attention.output.dense"):
            sd[p + name + ".weight"] = r(HIDDEN, HIDDEN)
            sd[p + name + ".bias"] = r(HIDDEN)
        sd[p + "attention.output.LayerNorm.weight"] = 1 + r(HIDDEN)
        sd[p + "attention.output.LayerNorm.bias"] = r(HIDDEN)
        sd[p + "intermediate.dense.weight"] = r(INTER, HIDDEN)
        sd[p + "intermediate.dense.bias"] = r(INTER)
        sd[p + "output.dense.weight"] = r(HIDDEN, INTER)
        sd[p + "output.dense.bias"] = r(HIDDEN)
        sd[p + "output.LayerNorm.weight"] = 1 + r(HIDDEN)
        sd[p + "output.LayerNorm.bias"] = r(HIDDEN)
    sd["bert.pooler.dense.weight"] = r(HIDDEN, HIDDEN)
    sd["bert.pooler.dense.bias"] = r(HIDDEN)
    # BertForPreTraining's heads: in the file, not in a BertModel.
    sd["cls.predictions.bias"] = r(v)
    sd["cls.predictions.transform.dense.weight"] = r(HIDDEN, HIDDEN)
    sd["cls.seq_relationship.weight"] = r(2, HIDDEN)
    torch.save(sd, path / "pytorch_model.bin")
    return sd


def sha256(path):
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def metrics(out_dir):
    return [json.loads(l) for l in (pathlib.Path(out_dir) / "metrics.jsonl").read_text().splitlines()]


@needs_tv
def test_image_init_gives_torchvision_features_and_records_the_file(corpus, resnet18_pth, tmp_path):
    out = tmp_path / "run"
    result = untrained(corpus, out, image_init=resnet18_pth)
    model = cm.load(result["model"])
    model.eval()
    config = cm.read_config(result["model"])
    # The file sets the architecture: torchvision's resnet18 (width 64), not the preset's width 32.
    assert config["image_encoder"] == "resnet18" and config["resnet"]["base_width"] == 64
    net = torchvision.models.resnet18()
    net.load_state_dict(torch.load(resnet18_pth))
    net.fc = torch.nn.Identity()
    net.eval()
    # The small model is grey: RGB conv1 weights load averaged, which equals torchvision on the grey
    # image divided by 3 and replicated to RGB.
    x = torch.rand(3, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = net((x / 3).expand(-1, 3, -1, -1))
        got = model.image_features(x)
    assert want.abs().max() > 1e-3
    assert torch.allclose(got, want, rtol=1e-4, atol=1e-5), (got - want).abs().max()
    # Provenance in the model's config and in metrics.jsonl.
    source = config["initial_weights"]["image"]
    assert source["sha256"] == sha256(resnet18_pth)
    assert source["bytes"] == os.path.getsize(resnet18_pth)
    assert source["path"] == str(resnet18_pth.resolve())
    init = [r for r in metrics(out) if r["type"] == "init"]
    assert len(init) == 1
    assert init[0]["image_init"] == str(resnet18_pth.resolve())
    assert init[0]["image_init_sha256"] == sha256(resnet18_pth)


@needs_tv
def test_mismatching_image_init_names_the_key(corpus, resnet18_pth, tmp_path):
    sd = torch.load(resnet18_pth)
    missing = dict(sd)
    del missing["layer2.0.bn1.running_mean"]
    torch.save(missing, tmp_path / "missing.pth")
    with pytest.raises(ValueError, match=r"layer2\.0\.bn1\.running_mean"):
        untrained(corpus, tmp_path / "a", image_init=tmp_path / "missing.pth")
    wrong = dict(sd)
    wrong["layer3.1.conv2.weight"] = torch.zeros(256, 256, 1, 1)
    torch.save(wrong, tmp_path / "wrong.pth")
    with pytest.raises(ValueError, match=r"layer3\.1\.conv2\.weight: expected \[256, 256, 3, 3\], "
                                         r"got \[256, 256, 1, 1\]"):
        untrained(corpus, tmp_path / "b", image_init=tmp_path / "wrong.pth")
    (tmp_path / "junk.pth").write_text("not weights")
    with pytest.raises(ValueError):
        untrained(corpus, tmp_path / "c", image_init=tmp_path / "junk.pth")
    with pytest.raises(ValueError, match="is not a file"):
        untrained(corpus, tmp_path / "d", image_init=tmp_path / "absent.pth")


@needs_tv
def test_image_init_from_safetensors(corpus, resnet18_pth, tmp_path):
    # convirt's own safetensors writer stands in for safetensors.torch.save_file (same format).
    sd = torch.load(resnet18_pth)
    path = tmp_path / "resnet18.safetensors"
    cm.write_safetensors(str(path), sd)
    a = cm.load(untrained(corpus, tmp_path / "a", image_init=path)["model"]).state_dict()
    b = cm.load(untrained(corpus, tmp_path / "b", image_init=resnet18_pth)["model"]).state_dict()
    for k, v in a.items():
        if k.startswith("image_encoder."):
            assert torch.equal(v, b[k]), k


def test_text_init_loads_the_hf_folder_and_freezes_as_the_paper(corpus, tmp_path):
    folder = tmp_path / "ClinicalBERT"
    sd = hf_bert_folder(folder, corpus / "vocab.txt")
    result = untrained(corpus, tmp_path / "u", text_init=folder)
    config = cm.read_config(result["model"])
    assert config["bert"]["config"]["hidden_size"] == HIDDEN
    assert config["bert"]["config"]["num_hidden_layers"] == LAYERS
    assert config["bert"]["frozen_layers"] == LAYERS // 2 and config["bert"]["freeze_embeddings"]
    assert config["max_length"] == min(64, POSITIONS)
    # The run uses (and keeps a copy of) the BERT folder's vocabulary; the model carries it too.
    assert result["vocab"] == str(tmp_path / "u" / "vocab.txt")
    assert (tmp_path / "u" / "vocab.txt").read_text().splitlines() == \
        (folder / "vocab.txt").read_text().splitlines()
    assert cm.read_vocabulary(result["model"]) == (folder / "vocab.txt").read_text().splitlines()
    loaded = cm.load(result["model"]).state_dict()
    checked = 0
    for key, value in sd.items():
        if not key.startswith("bert.") or key.endswith("position_ids"):
            continue
        assert torch.equal(loaded["text_encoder." + key[len("bert."):]], value), key
        checked += 1
    assert checked == len([k for k in sd if k.startswith("bert.")]) - 1
    weights = folder / "pytorch_model.bin"
    source = config["initial_weights"]["text"]
    assert source["sha256"] == sha256(weights) and source["bytes"] == os.path.getsize(weights)

    # Training moves the last layer only: embeddings and the first half stay as loaded.
    result = train.pretrain(run_config(corpus, tmp_path / "t", text_init=folder, learning_rate=1e-2))
    assert result["skipped_steps"] == 0
    trained = cm.load(result["model"]).state_dict()
    frozen = "text_encoder.encoder.layer.0.attention.self.query.weight"
    assert torch.equal(trained[frozen], sd["bert.encoder.layer.0.attention.self.query.weight"])
    assert torch.equal(trained["text_encoder.embeddings.word_embeddings.weight"],
                       sd["bert.embeddings.word_embeddings.weight"])
    moving = "text_encoder.encoder.layer.1.attention.self.query.weight"
    assert not torch.equal(trained[moving], sd["bert.encoder.layer.1.attention.self.query.weight"])

    # text_frozen_layers 0 trains all of BERT, embeddings included.
    result = untrained(corpus, tmp_path / "z", text_init=folder, text_frozen_layers=0)
    bert = cm.read_config(result["model"])["bert"]
    assert bert["frozen_layers"] == 0 and not bert["freeze_embeddings"]


def test_text_init_vocabulary_must_match_its_config(corpus, tmp_path):
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "effusion", "left", "right"]
    (tmp_path / "v.txt").write_text("\n".join(vocab) + "\n")
    bad = tmp_path / "bad"
    hf_bert_folder(bad, tmp_path / "v.txt")
    cfg = json.loads((bad / "config.json").read_text())
    cfg["vocab_size"] = 9
    (bad / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="vocab.txt has 8 tokens but config.json's vocab_size is 9"):
        untrained(corpus, tmp_path / "b", text_init=bad)


def test_mismatching_text_init_names_the_key_and_shapes(corpus, tmp_path):
    folder = tmp_path / "bert"
    sd = hf_bert_folder(folder, corpus / "vocab.txt")
    sd["bert.encoder.layer.1.intermediate.dense.weight"] = torch.zeros(INTER + 1, HIDDEN)
    torch.save(sd, folder / "pytorch_model.bin")
    with pytest.raises(ValueError, match=r"text_init .*encoder\.layer\.1\.intermediate\.dense\.weight: "
                                         r"expected \[32, 16\], got \[33, 16\]"):
        untrained(corpus, tmp_path / "a", text_init=folder)
    del sd["bert.encoder.layer.1.intermediate.dense.weight"]
    torch.save(sd, folder / "pytorch_model.bin")
    with pytest.raises(ValueError, match=r"encoder\.layer\.1\.intermediate\.dense\.weight"):
        untrained(corpus, tmp_path / "b", text_init=folder)
    with pytest.raises(ValueError, match="vocab and text_init both name the vocabulary"):
        train.pretrain(run_config(corpus, tmp_path / "c", text_init=folder, vocab=corpus / "vocab.txt"))


def test_bf16_on_cpu_trains_and_fp16_on_cpu_is_refused(corpus, tmp_path):
    seen = []
    result = train.pretrain(run_config(corpus, tmp_path / "bf16", precision="bf16", max_steps=6,
                                       eval_every=3), callback=seen.append)
    losses = [m["loss"] for m in seen if not m["is_eval"]]
    assert len(losses) == 6 and all(torch.isfinite(torch.tensor(losses)))
    assert result["skipped_steps"] == 0
    # bf16 forward passes differ from fp32 ones: the autocast path really ran.
    fp32 = []
    train.pretrain(run_config(corpus, tmp_path / "fp32", precision="fp32", max_steps=1),
                   callback=fp32.append)
    assert fp32[0]["loss"] != losses[0]
    assert abs(fp32[0]["loss"] - losses[0]) < 0.1
    with pytest.raises(ValueError, match="precision 'fp16' needs a CUDA device, got device 'cpu'"):
        train.pretrain(run_config(corpus, tmp_path / "fp16", precision="fp16"))
    with pytest.raises(ValueError, match="precision must be one of"):
        train.pretrain(run_config(corpus, tmp_path / "x", precision="fp8"))


def test_device_default_and_errors(corpus, tmp_path):
    from convirt import _C
    assert train.PRETRAIN_DEFAULTS["device"] == _C.train.DEFAULT_DEVICE == "auto"
    assert train.PRETRAIN_DEFAULTS["precision"] == _C.train.DEFAULT_PRECISION == "auto"
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    with pytest.raises(ValueError, match="is not available"):
        train.pretrain(run_config(corpus, tmp_path / "a", device=f"cuda:{gpus + 3}"))
    with pytest.raises(ValueError, match="device must be auto, cpu, cuda or cuda:N, got 'tpu'"):
        train.pretrain(run_config(corpus, tmp_path / "b", device="tpu"))


def convirt_binary():
    here = pathlib.Path(__file__).resolve().parents[2]
    for candidate in (os.environ.get("CONVIRT_BIN", ""), here / "build" / "bin" / "convirt"):
        if candidate and pathlib.Path(candidate).exists():
            return str(candidate)
    pytest.skip("the convirt program is not built")


@needs_tv
def test_cli_pretrain_with_both_inits(resnet18_pth, tmp_path):
    data = pytest.importorskip("convirt.data")
    summary = data.generate_synthetic(tmp_path / "data", train_studies=12, validate_studies=4,
                                      test_studies=1, chexpert_train=1, chexpert_valid=1,
                                      retrieval_candidates=1, retrieval_image_queries=1,
                                      retrieval_text_queries=1, image_size=32, seed=1, threads=2)
    corpus_vocab = tmp_path / "corpus_vocab.txt"
    words = sorted({w for f in FINDINGS for w in f.split()})
    corpus_vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words) + "\n")
    folder = tmp_path / "bert"
    hf_bert_folder(folder, corpus_vocab)
    out = tmp_path / "run"
    cmd = [convirt_binary(), "pretrain", "--data", summary["mimic_root"], "--out", str(out),
           "--image-init", str(resnet18_pth), "--text-init", str(folder), "--image-size", "32",
           "--batch-size", "4", "--max-steps", "2", "--eval-every", "2", "--workers", "0",
           "--threads", "1", "--device", "cpu", "--precision", "bf16"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "[init] image encoder resnet18 (base width 64)" in proc.stderr
    assert "first 1 layers frozen" in proc.stderr
    config = cm.read_config(str(out / "model.pt"))
    assert config["initial_weights"]["image"]["sha256"] == sha256(resnet18_pth)
    assert config["initial_weights"]["text"]["sha256"] == sha256(folder / "pytorch_model.bin")
    assert (out / "vocab.txt").read_text() == (folder / "vocab.txt").read_text()
    bad = subprocess.run(cmd[:-2] + ["--precision", "fp16", "--no-resume"], capture_output=True,
                         text=True, timeout=300)
    assert bad.returncode == 1 and "precision 'fp16' needs a CUDA device" in bad.stderr


def test_resumed_init_run_logs_its_source_once(corpus, tmp_path):
    folder = tmp_path / "bert"
    hf_bert_folder(folder, corpus / "vocab.txt")
    out = tmp_path / "run"
    train.pretrain(run_config(corpus, out, text_init=folder, max_steps=2))
    result = train.pretrain(run_config(corpus, out, text_init=folder, max_steps=4,
                                       allow_option_change=True))
    assert result["steps"] == 4
    records = metrics(out)
    init = [r for r in records if r["type"] == "init"]
    assert len(init) == 1 and records[0]["type"] == "init"
    assert init[0]["text_init_sha256"] == sha256(folder / "pytorch_model.bin")
    assert cm.read_config(result["model"])["initial_weights"]["text"]["folder"] == str(folder.resolve())
