"""Interoperability checked from the other side: convirt's exports read by code that is not convirt's.

* The torchvision export (a state_dict file) is loaded by ``torchvision.models.resnet18`` /
  ``resnet50`` themselves with ``load_state_dict(strict=True)``, and gives the encoder's features.
  (test_models.py checks ``convirt.models.torchvision_resnet``, convirt's own helper; here nothing of
  convirt builds the torchvision model.)
* The Hugging Face BERT export is read by hf_bert_layout.py, an independent reader of HF's layout
  (config keys, tensor names and shapes, tokenizer files), whose plain-torch BERT forward pass on the
  exported tensors gives the text encoder's features, and whose transcription of HF's BertTokenizer
  (bert_reference.py), configured from the exported tokenizer files, splits text as convirt does.

Run: PYTHONPATH=build/python /usr/bin/python3 -m pytest tests/python/test_interop.py
"""
import json
import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))
import bert_reference  # noqa: E402
import hf_bert_layout  # noqa: E402

cm = pytest.importorskip("convirt.models")
ct = pytest.importorskip("convirt.text")
torchvision = pytest.importorskip("torchvision")


def config(arch="resnet18", in_channels=3, channel_mode="average"):
    """A small model whose ResNet has torchvision's widths (base width 64, standard blocks)."""
    cfg = json.loads(cm._models.small_preset_config(40))
    cfg["image_encoder"] = arch
    cfg["resnet"].update(base_width=64, in_channels=in_channels, layers=[], channel_mode=channel_mode)
    cfg["bert"]["config"].update(hidden_size=16, num_attention_heads=2, intermediate_size=32,
                                 max_position_embeddings=24, num_hidden_layers=2)
    cfg["projection_dim"] = 8
    cfg["max_length"] = 24
    cfg["image_size"] = 32
    return cfg


def perturb_batchnorm(model):
    """Non-trivial running statistics, so that a mismatched BatchNorm buffer would show."""
    sd = model.state_dict()
    g = torch.Generator().manual_seed(1)
    for k, v in sd.items():
        if k.endswith("running_mean"):
            sd[k] = 0.1 * torch.randn(v.shape, generator=g)
        elif k.endswith("running_var"):
            sd[k] = 0.5 + torch.rand(v.shape, generator=g)
    model.load_state_dict(sd)


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_torchvision_loads_the_export_file_and_gives_the_same_features(tmp_path, arch):
    torch.manual_seed(0)
    model = cm.make(config(arch))
    perturb_batchnorm(model)
    model.eval()
    path = tmp_path / f"{arch}.pth"
    cm.export_torchvision(model, str(path))

    # torchvision's own constructor and loader; fc is the one module the encoder does not have.
    net = getattr(torchvision.models, arch)()
    net.fc = torch.nn.Identity()
    report = net.load_state_dict(torch.load(str(path)), strict=True)
    assert not report.missing_keys and not report.unexpected_keys
    net.eval()
    images = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        want = model.image_features(images)
        got = net(images)
    assert got.shape == want.shape == (3, 512 if arch == "resnet18" else 2048)
    assert (got - want).abs().max().item() < 1e-4 * max(1.0, want.abs().max().item())


def test_torchvision_loads_a_grey_encoder_as_rgb(tmp_path):
    """A 1-channel ("sum" mode) encoder exports conv1 as w / 3 per RGB channel: torchvision on the
    grey image replicated to RGB gives the same features."""
    torch.manual_seed(0)
    model = cm.make(config("resnet18", in_channels=1, channel_mode="sum"))
    model.eval()
    cm.export_torchvision(model, str(tmp_path / "grey.pth"))
    net = torchvision.models.resnet18()
    net.fc = torch.nn.Identity()
    net.load_state_dict(torch.load(str(tmp_path / "grey.pth")), strict=True)
    net.eval()
    grey = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert (net(grey.expand(-1, 3, -1, -1)) - model.image_features(grey)).abs().max().item() < 1e-4


def write_vocab(path, words):
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    pieces = ["##s", "##ed", "##ion"]
    vocab = specials + words + pieces
    path.write_text("".join(t + "\n" for t in vocab), encoding="utf-8")
    return vocab


def test_hf_export_is_read_by_an_independent_hf_layout_reader(tmp_path):
    words = ["there", "is", "a", "small", "left", "pleural", "effus", "no", "pneumothorax", ".", ","]
    vocab_path = tmp_path / "vocab.txt"
    cfg = config()
    cfg["bert"]["config"]["vocab_size"] = len(write_vocab(vocab_path, words))
    torch.manual_seed(0)
    model = cm.make(cfg)
    model.eval()
    out = tmp_path / "hf"
    cm.export_hf_bert(model, str(out), str(vocab_path), format="safetensors")

    folder = hf_bert_layout.read_folder(str(out))  # raises listing every deviation from HF's layout
    hf_cfg = folder["config"]
    assert hf_cfg["hidden_size"] == 16 and hf_cfg["num_hidden_layers"] == 2
    assert hf_cfg["architectures"] == ["BertModel"]
    assert folder["vocab"] == vocab_path.read_text(encoding="utf-8").splitlines()
    assert folder["tokenizer_config"]["do_lower_case"] is True
    assert folder["tokenizer_config"]["model_max_length"] == 24

    # The HF tokenizer the files describe (bert_reference: HF's BertTokenizer transcribed) splits
    # text into the ids convirt's tokenizer gives.
    ref = bert_reference.BertTokenizer(str(out / "vocab.txt"),
                                       do_lower_case=folder["tokenizer_config"]["do_lower_case"],
                                       strip_accents=folder["tokenizer_config"]["strip_accents"])
    texts = ["There is a small LEFT pleural effusion.", "No pneumothorax, no effusions.", "Unknown words."]
    tok = ct.WordPieceTokenizer(folder["vocab"], max_length=24)
    enc = tok.encode_batch(texts, padding="longest")
    for row, text in enumerate(texts):
        ids = ref.encode(text, max_length=24)
        assert enc["input_ids"][row, :len(ids)].tolist() == ids, text
        assert enc["attention_mask"][row].sum().item() == len(ids)

    # The tensors mean what their HF names say: a plain-torch BERT on them gives the encoder's
    # last hidden state, max-pooled over the real tokens = convirt's text features.
    hidden = hf_bert_layout.bert_forward(folder["tensors"], hf_cfg, enc["input_ids"], enc["attention_mask"])
    pooled = hidden.masked_fill(enc["attention_mask"][..., None] == 0, float("-inf")).amax(1)
    with torch.no_grad():
        want = model.text_features(enc["input_ids"], enc["attention_mask"])
    assert (pooled - want).abs().max().item() < 1e-4


def test_the_hf_layout_reader_reports_deviations(tmp_path):
    """The reader is a check, not a formality: a renamed tensor, a missing key and a wrong vocabulary
    size are each reported."""
    words = ["a", "b"]
    vocab_path = tmp_path / "vocab.txt"
    cfg = config()
    cfg["bert"]["config"]["vocab_size"] = len(write_vocab(vocab_path, words))
    model = cm.make(cfg)
    out = tmp_path / "hf"
    cm.export_hf_bert(model, str(out), str(vocab_path))
    tensors, meta = hf_bert_layout.read_safetensors(str(out / "model.safetensors"))
    tensors["encoder.layer.0.attention.self.q.weight"] = tensors.pop("encoder.layer.0.attention.self.query.weight")
    cm.write_safetensors(str(out / "model.safetensors"), tensors, meta)
    hf_cfg = json.loads((out / "config.json").read_text())
    del hf_cfg["layer_norm_eps"]
    (out / "config.json").write_text(json.dumps(hf_cfg))
    (out / "vocab.txt").write_text("[PAD]\n[UNK]\n")
    with pytest.raises(AssertionError) as e:
        hf_bert_layout.read_folder(str(out))
    msg = str(e.value)
    assert "missing tensor encoder.layer.0.attention.self.query.weight" in msg
    assert "lacks 'layer_norm_eps'" in msg
    assert "vocab.txt has 2 entries" in msg
