"""convirt.models: the run-time ConVIRT model from Python, its checkpoints, and the exports to
torchvision and Hugging Face layouts.

Run: PYTHONPATH=build/python /usr/bin/python3 -m pytest tests/python/test_models.py
"""
import json
import os

import pytest
import torch

cm = pytest.importorskip("convirt.models")

try:
    import torchvision
except ImportError:  # the torchvision comparison skips, the rest runs
    torchvision = None


def tiny_config(base_width=8, in_channels=1, layers=(1, 1, 1, 1)):
    cfg = json.loads(cm._models.small_preset_config(64))
    cfg["resnet"].update(base_width=base_width, in_channels=in_channels, layers=list(layers))
    cfg["bert"]["config"].update(hidden_size=16, num_attention_heads=2, intermediate_size=32,
                                 max_position_embeddings=12)
    cfg["bert"]["frozen_layers"] = 1
    cfg["bert"]["freeze_embeddings"] = True
    cfg["projection_dim"] = 8
    return cfg


def batch(b=4, channels=1, size=32):
    g = torch.Generator().manual_seed(0)
    mask = torch.ones(b, 10, dtype=torch.long)
    mask[0, 5:] = 0
    return (torch.randn(b, channels, size, size, generator=g), torch.randint(1, 64, (b, 10), generator=g),
            mask)


def test_forward_backward_and_python_optimiser_train_the_cpp_parameters():
    model = cm.make(tiny_config())
    images, ids, mask = batch()
    v, u = model(images, ids, mask)
    assert v.shape == (4, 8) and u.shape == (4, 8)
    params = dict(model.named_parameters())
    frozen = [k for k, p in params.items() if not p.requires_grad]
    assert any(k.startswith("text_encoder.embeddings.") for k in frozen)
    assert any(k.startswith("text_encoder.encoder.layer.0.") for k in frozen)
    assert not any(k.startswith("text_encoder.encoder.layer.1.") for k in frozen)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    before = params["image_head.fc2.weight"].clone()
    frozen_before = params["text_encoder.embeddings.word_embeddings.weight"].clone()
    (v * u).sum().backward()
    opt.step()
    after = model.state_dict()
    assert not torch.equal(after["image_head.fc2.weight"], before)
    assert torch.equal(after["text_encoder.embeddings.word_embeddings.weight"], frozen_before)


def test_checkpoint_round_trip_keeps_config_and_outputs(tmp_path):
    model = cm.make(tiny_config())
    model.eval()
    images, ids, mask = batch()
    v, u = model(images, ids, mask)
    path = str(tmp_path / "m.safetensors")
    model.save(path)
    assert cm.read_config(path)["projection_dim"] == 8
    again = cm.load(path)
    again.eval()
    v2, u2 = again(images, ids, mask)
    assert torch.equal(v, v2) and torch.equal(u, u2)
    tensors, meta = cm.read_safetensors(path)
    assert meta["format"] == "convirt"
    assert set(tensors) == set(model.state_dict())


@pytest.mark.skipif(torchvision is None, reason="torchvision is not installed")
def test_torchvision_resnet_from_a_checkpoint_gives_the_same_features(tmp_path):
    model = cm.make(tiny_config(base_width=64, in_channels=3, layers=()))
    model.eval()
    path = str(tmp_path / "m.safetensors")
    model.save(path)
    net = cm.torchvision_resnet(path)
    assert isinstance(net, torchvision.models.ResNet)
    net.eval()
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        err = (net(images) - model.image_features(images)).abs().max().item()
    assert err < 1e-4
    # A 1-channel encoder ("sum" mode) exports as w / 3 per RGB channel: torchvision on the grey image
    # replicated to RGB gives the same features.
    cfg = tiny_config(base_width=64, in_channels=1, layers=())
    cfg["resnet"]["channel_mode"] = "sum"
    grey_model = cm.make(cfg)
    grey_model.eval()
    grey_net = cm.torchvision_resnet(grey_model).eval()
    grey = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        err = (grey_net(grey.expand(-1, 3, -1, -1)) - grey_model.image_features(grey)).abs().max().item()
    assert err < 1e-4
    narrow = cm.make(tiny_config())
    with pytest.raises(ValueError, match="base_width 8"):
        cm.torchvision_resnet(narrow)


def test_hf_export_holds_the_text_encoder_under_hf_names(tmp_path):
    model = cm.make(tiny_config())
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("".join(f"t{i}\n" for i in range(64)))
    out = tmp_path / "bert"
    cm.export_hf_bert(model, str(out), str(vocab), format="both")
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "bert" and config["hidden_size"] == 16
    assert (out / "vocab.txt").read_text() == vocab.read_text()
    params = model.state_dict()
    for name in ("model.safetensors", "pytorch_model.bin"):
        sd, skipped = cm.hf_bert_state_dict(str(out / name))
        assert not skipped
        for k, t in sd.items():
            assert torch.equal(t, params["text_encoder." + k]), k
    # Python's own torch.load reads what convirt wrote.
    bin_sd = torch.load(str(out / "pytorch_model.bin"))
    assert "encoder.layer.1.attention.self.query.weight" in bin_sd


def test_state_dict_files_interoperate_with_torch_save(tmp_path):
    sd = {"a": torch.randn(3, 4), "b": torch.arange(5), "c": torch.randn(2, 3).t()}
    torch.save(sd, str(tmp_path / "x.pt"))
    back = cm.read_state_dict(str(tmp_path / "x.pt"))
    assert list(back) == list(sd) and all(torch.equal(back[k], sd[k]) for k in sd)
    cm.write_safetensors(str(tmp_path / "x.safetensors"), sd, {"k": "v"})
    back, meta = cm.read_safetensors(str(tmp_path / "x.safetensors"))
    assert meta == {"k": "v"} and all(torch.equal(back[k], sd[k]) for k in sd)
    torch.save({"state_dict": sd, "epoch": 3}, str(tmp_path / "wrapped.pt"))
    assert list(cm.read_state_dict(str(tmp_path / "wrapped.pt"))) == list(sd)
    torch.save({"a": sd["a"], "step": 3}, str(tmp_path / "mixed.pt"))
    with pytest.raises(ValueError, match="value of 'step' is not a tensor"):
        cm.read_state_dict(str(tmp_path / "mixed.pt"))
    cm.write_torch_state_dict(str(tmp_path / "y.pt"), sd)
    loaded = torch.load(str(tmp_path / "y.pt"))
    assert all(torch.equal(loaded[k], sd[k]) for k in sd)


def test_encoder_options_and_image_channels_reach_python_and_checkpoints(tmp_path):
    cfg = tiny_config(in_channels=1)
    assert "image_encoder_options" not in cfg  # absent unless set: old configs keep their text
    cfg["image_encoder_options"] = {"in_channels": 5, "note": "for a registered encoder"}
    cfg["text_encoder_options"] = {"note": "kept"}
    model = cm.make(cfg)
    # The built-in ResNet takes its channels from "resnet"; the options ride along untouched.
    assert model.image_channels == 1
    assert model.config["image_encoder_options"] == {"in_channels": 5, "note": "for a registered encoder"}
    path = str(tmp_path / "m.safetensors")
    model.save(path)
    assert cm.read_config(path)["text_encoder_options"] == {"note": "kept"}
    assert cm.load(path).image_channels == 1
    assert cm.make(tiny_config(in_channels=3)).image_channels == 3
    cfg["image_encoder_options"] = [5]
    with pytest.raises(ValueError, match="'image_encoder_options' must be a JSON object, got \\[5\\]"):
        cm.make(cfg)


def test_make_reads_a_config_json_file(tmp_path):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(tiny_config()))
    model = cm.make(str(path))
    assert model.output_dim == 8
    with pytest.raises(ValueError, match="cannot read the model config file .*absent.json"):
        cm.make(str(tmp_path / "absent.json"))


def test_bad_input_raises_typed_errors_naming_the_problem(tmp_path):
    with pytest.raises(ValueError, match="unknown model preset 'huge'"):
        cm.make("huge")
    model = cm.make(tiny_config())
    images, ids, mask = batch()
    with pytest.raises(ValueError, match="must have 1 channel"):
        model.encode_image(torch.randn(2, 3, 32, 32))
    with pytest.raises(IndexError, match="vocab_size = 64"):
        model.encode_text(torch.full((2, 4), 64, dtype=torch.long), torch.ones(2, 4, dtype=torch.long))
    with pytest.raises(IndexError, match="max_position_embeddings = 12"):
        model.encode_text(torch.ones(2, 13, dtype=torch.long), torch.ones(2, 13, dtype=torch.long))
    sd = model.state_dict()
    sd["image_head.fc1.weight"] = torch.zeros(3, 3)
    # The model is a torch.nn.Module: its load_state_dict reports as PyTorch's does; the C++
    # model's own (model.cpp) gives convirt's ValueError and report dict.
    with pytest.raises(RuntimeError, match="size mismatch for image_head.fc1.weight"):
        model.load_state_dict(sd)
    with pytest.raises(ValueError, match="image_head.fc1.weight: expected"):
        model.cpp.load_state_dict(sd)
    del sd["image_head.fc1.weight"]
    assert model.load_state_dict(sd, strict=False).missing_keys == ["image_head.fc1.weight"]
    report = model.cpp.load_state_dict(sd, strict=False)
    assert report["missing_keys"] == ["image_head.fc1.weight"]
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}")
    with pytest.raises(ValueError, match="exceeds the file size"):
        cm.load(str(bad))
