"""convirt.models.ConVIRTModel as a torch.nn.Module: its parameters and buffers are the C++ tensors
(same objects, same storage), so optimisers, .to(), .train()/.eval(), state dicts, pickling and hooks
behave as for any PyTorch model; encode_images / encode_texts embed raw inputs with the model's own
preprocessing and tokenizer.

Run: PYTHONPATH=build/python /usr/bin/python3 -m pytest tests/python/test_model_module.py
"""
import copy
import io
import json
import pickle

import pytest
import torch
import torch.nn as nn

convirt = pytest.importorskip("convirt")
cm = pytest.importorskip("convirt.models")
ci = pytest.importorskip("convirt.image")
ct = pytest.importorskip("convirt.text")

SENTENCES = ["No pleural effusion.", "The heart size is normal.", "Small left opacity.",
             "No pneumothorax is seen.", "Large right effusion with opacity."]


def tiny_config():
    cfg = json.loads(cm._models.small_preset_config(64))
    cfg["resnet"].update(base_width=8, in_channels=1, layers=[1, 1, 1, 1])
    cfg["bert"]["config"].update(hidden_size=16, num_attention_heads=2, intermediate_size=32,
                                 max_position_embeddings=16)
    cfg["bert"]["frozen_layers"] = 1
    cfg["bert"]["freeze_embeddings"] = True
    cfg["projection_dim"] = 8
    cfg["image_size"] = 32
    cfg["max_length"] = 16
    return cfg


def batch(b=4, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(b, 10, dtype=torch.long)
    mask[0, 5:] = 0
    return torch.randn(b, 1, size, size, generator=g), torch.randint(1, 64, (b, 10), generator=g), mask


def model_and_batch(seed=0):
    torch.manual_seed(seed)
    return cm.make(tiny_config()), batch(seed=seed)


def cpp_tensor(model, name):
    cpp = model.cpp
    named = cpp.named_parameters()
    return named[name] if name in named else cpp.named_buffers()[name]


def test_is_an_nn_module_whose_tensors_are_the_cpp_tensors():
    model, (images, ids, mask) = model_and_batch()
    assert isinstance(model, nn.Module) and isinstance(model, cm.ConVIRTModel)
    assert isinstance(model.cpp, cm._models.ConVIRTModel)
    names = dict(model.named_parameters())
    assert set(names) == set(model.cpp.named_parameters())
    assert set(model.state_dict()) == set(model.cpp.state_dict())
    assert all(isinstance(p, nn.Parameter) for p in names.values())
    # The very objects C++ holds (not copies), parameters and buffers alike.
    for name, p in names.items():
        assert p is cpp_tensor(model, name), name
    for name, b in model.named_buffers():
        assert b is cpp_tensor(model, name), name
    frozen = {k for k, p in names.items() if not p.requires_grad}
    assert "text_encoder.embeddings.word_embeddings.weight" in frozen
    assert not any(k.startswith("image_encoder.") for k in frozen)
    # A change made in Python is what the next C++ forward computes with.
    model.eval()
    v, _ = model(images, ids, mask)
    with torch.no_grad():
        names["image_head.fc2.weight"].mul_(2.0)
        names["image_head.fc2.bias"].mul_(2.0)
    v2, _ = model(images, ids, mask)
    assert torch.allclose(v2, 2 * v, atol=1e-5)
    # Assigning a tensor to a name takes it into the C++ tensor (which stays the registered object).
    fc2 = model.image_head.fc2
    weight = fc2.weight
    fc2.weight = nn.Parameter(torch.zeros_like(weight))
    fc2.bias = torch.zeros_like(fc2.bias)
    assert fc2.weight is weight and weight is cpp_tensor(model, "image_head.fc2.weight")
    assert weight.requires_grad and weight.abs().sum() == 0
    assert torch.equal(model(images, ids, mask)[0], torch.zeros_like(v))
    with pytest.raises(TypeError, match=r"assign a tensor of shape \[8, "):
        fc2.weight = torch.zeros(3)
    with pytest.raises(AttributeError, match="cannot be deleted"):
        del fc2.bias
    # The tree nodes hold tensors only: calling one says what to call instead.
    with pytest.raises(RuntimeError, match="call the ConVIRTModel"):
        model.image_head(v)
    assert isinstance(model.image_head, cm.CppTensors)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_torch_optimizers_train_the_cpp_weights(optimizer):
    model, (images, ids, mask) = model_and_batch()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = (torch.optim.SGD(params, lr=0.1) if optimizer == "sgd" else torch.optim.Adam(params, lr=1e-2))
    cpp_before = {k: t.clone() for k, t in model.cpp.state_dict().items()}
    losses = []
    for _ in range(3):
        v, u = model(images, ids, mask)
        loss = convirt.infonce_loss(v, u, temperature=0.1)
        opt.zero_grad()
        loss.backward()
        assert model.image_head.fc2.weight.grad is not None  # C++ autograd filled the Python grad
        opt.step()
        losses.append(loss.item())
    cpp_after = model.cpp.state_dict()
    assert not torch.equal(cpp_after["image_encoder.conv1.weight"], cpp_before["image_encoder.conv1.weight"])
    assert torch.equal(cpp_after["text_encoder.embeddings.word_embeddings.weight"],
                       cpp_before["text_encoder.embeddings.word_embeddings.weight"])
    # A second C++ model given the trained weights through the C++ loader computes the same outputs.
    other = cm.make(tiny_config())
    other.cpp.load_state_dict(model.state_dict())
    model.eval()
    other.eval()
    with torch.no_grad():
        a, b = model(images, ids, mask), other.cpp.forward(images, ids, mask)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


class Probe(nn.Module):
    """A user's model around the ConVIRT backbone: a linear head on v."""

    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(backbone.output_dim, 2)

    def forward(self, images, ids, mask):
        v, _ = self.backbone(images, ids, mask)
        return self.head(v)


def test_mixes_with_user_modules_in_one_training_loop():
    model, (images, ids, mask) = model_and_batch()
    probe = Probe(model)
    target = torch.tensor([0, 1, 0, 1])
    opt = torch.optim.Adam([p for p in probe.parameters() if p.requires_grad], lr=1e-2)
    head_before = probe.head.weight.detach().clone()
    conv_before = model.cpp.state_dict()["image_encoder.conv1.weight"].clone()
    for _ in range(2):
        loss = nn.functional.cross_entropy(probe(images, ids, mask), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert not torch.equal(probe.head.weight, head_before)
    assert not torch.equal(model.cpp.state_dict()["image_encoder.conv1.weight"], conv_before)
    sd = probe.state_dict()
    assert "head.weight" in sd and "backbone.image_encoder.conv1.weight" in sd
    # The parent's eval() reaches the C++ modules; its state dict loads into a fresh copy.
    probe.eval()
    assert not model.cpp.training
    again = Probe(cm.make(tiny_config())).eval()
    again.load_state_dict(sd)
    with torch.no_grad():
        assert torch.equal(again(images, ids, mask), probe(images, ids, mask))
    # A container's .double() reaches the C++ tensors through the model's _apply.
    container = nn.ModuleDict({"convirt": model, "extra": nn.Linear(8, 8)})
    container.double()
    assert model.cpp.named_buffers()["image_encoder.bn1.running_var"].dtype == torch.float64
    assert container["extra"].weight.dtype == torch.float64
    with torch.no_grad():
        assert container["convirt"](images.double(), ids, mask)[0].dtype == torch.float64


def test_train_and_eval_reach_batchnorm_and_dropout():
    model, (images, ids, mask) = model_and_batch()
    running = "image_encoder.bn1.running_mean"
    assert running in dict(model.named_buffers())
    assert model.eval() is model and not model.training and not model.cpp.training
    assert not model.image_encoder.training
    with torch.no_grad():
        v_eval, _ = model(images, ids, mask)
        again, _ = model(images, ids, mask)
    assert torch.equal(v_eval, again)  # eval: running statistics, nothing updated
    before = dict(model.named_buffers())[running].clone()
    assert model.train() is model and model.training and model.cpp.training
    with torch.no_grad():
        v_train, _ = model(images, ids, mask)
    assert not torch.allclose(v_train, v_eval, atol=1e-4)  # batch statistics
    # The C++ BatchNorm updated its running mean, and Python sees it (the buffer is shared).
    assert not torch.equal(dict(model.named_buffers())[running], before)
    model.train(False)
    assert not model.cpp.training
    with pytest.raises(ValueError, match="mode must be a bool"):
        model.train("no")


def test_state_dict_round_trip_and_errors():
    model, (images, ids, mask) = model_and_batch(seed=0)
    other, _ = model_and_batch(seed=1)
    model.eval()
    other.eval()
    with torch.no_grad():
        v, u = model(images, ids, mask)
        assert not torch.equal(other(images, ids, mask)[0], v)
    sd = model.state_dict()
    assert set(sd) == set(model.cpp.state_dict())  # the checkpoint's names
    result = other.load_state_dict(sd)
    assert result.missing_keys == [] and result.unexpected_keys == []
    with torch.no_grad():
        v2, u2 = other(images, ids, mask)
    assert torch.equal(v, v2) and torch.equal(u, u2)
    assert torch.equal(other.cpp.state_dict()["image_head.fc1.weight"], sd["image_head.fc1.weight"])
    bad = dict(sd)
    bad["image_head.fc1.weight"] = torch.zeros(3, 3)
    with pytest.raises(RuntimeError, match="size mismatch for image_head.fc1.weight"):
        other.load_state_dict(bad)
    del bad["image_head.fc1.weight"]
    assert other.load_state_dict(bad, strict=False).missing_keys == ["image_head.fc1.weight"]


def test_torch_save_pickle_and_deepcopy_give_an_equal_model(tmp_path):
    model, (images, ids, mask) = model_and_batch()
    model.eval()
    model.image_head.fc2.bias.requires_grad_(False)  # a Python-side freeze survives
    with torch.no_grad():
        v, u = model(images, ids, mask)
    path = tmp_path / "model.pth"
    torch.save(model, path)
    restored = [torch.load(path, weights_only=False), pickle.loads(pickle.dumps(model)), copy.deepcopy(model)]
    buf = io.BytesIO()
    torch.save(model, buf)
    buf.seek(0)
    restored.append(torch.load(buf, weights_only=False))
    for again in restored:
        assert isinstance(again, cm.ConVIRTModel) and not again.training and not again.cpp.training
        assert again.config_json == model.config_json
        with torch.no_grad():
            v2, u2 = again(images, ids, mask)
        assert torch.equal(v, v2) and torch.equal(u, u2)
        assert not again.image_head.fc2.bias.requires_grad
        assert not again.text_encoder.embeddings.word_embeddings.weight.requires_grad
        for name, p in again.named_parameters():
            assert p is cpp_tensor(again, name), name
        # Its own storage: changing the copy leaves the original alone.
        with torch.no_grad():
            again.image_head.fc2.weight.zero_()
        assert model.image_head.fc2.weight.abs().sum() > 0


def test_to_float64_moves_the_cpp_tensors():
    model, (images, ids, mask) = model_and_batch()
    model.eval()
    with torch.no_grad():
        v, u = model(images, ids, mask)
    assert model.to(torch.float64) is model
    assert model.cpp.named_parameters()["image_head.fc1.weight"].dtype == torch.float64
    assert model.cpp.named_buffers()["image_encoder.bn1.running_var"].dtype == torch.float64
    for name, t in list(model.named_parameters()) + list(model.named_buffers()):
        assert t is cpp_tensor(model, name), name
    with torch.no_grad():
        v64, u64 = model(images.double(), ids, mask)
    assert v64.dtype == torch.float64 and torch.allclose(v64.float(), v, atol=1e-4)
    assert torch.allclose(u64.float(), u, atol=1e-4)
    model.float()
    assert all(p.dtype == torch.float32 for p in model.cpp.parameters())
    # .to() on a subtree reaches the C++ tensors too (the buffers it replaces are put back).
    model.image_encoder.to(torch.float64)
    assert model.cpp.named_buffers()["image_encoder.bn1.running_var"].dtype == torch.float64
    assert model.cpp.named_parameters()["image_encoder.conv1.weight"].dtype == torch.float64
    assert model.cpp.named_parameters()["image_head.fc1.weight"].dtype == torch.float32
    model.float()
    assert model.encode_images(images).dtype == torch.float32


def test_forward_hooks_fire():
    model, (images, ids, mask) = model_and_batch()
    seen = []
    handle = model.register_forward_hook(lambda m, inputs, out: seen.append((m, out[0].shape)))
    model(images, ids, mask)
    assert seen == [(model, torch.Size([4, 8]))]
    handle.remove()
    # A hook may replace the output, as for any module.
    model.register_forward_hook(lambda m, inputs, out: (out[0] * 0, out[1]))
    v, u = model(images, ids, mask)
    assert torch.equal(v, torch.zeros_like(v)) and u.abs().sum() > 0


def write_images(tmp_path, n=5):
    paths = []
    for i in range(n):
        g = torch.Generator().manual_seed(i)
        h, w = 40 + 6 * i, 30 + 4 * i  # not square, not the model's size: padded and resized
        p = tmp_path / f"img{i}.png"
        ci.write_png(p, torch.rand(1, h, w, generator=g))
        paths.append(p)
    return paths


def test_encode_images_from_paths_and_tensors_agree(tmp_path):
    model, _ = model_and_batch()
    model.train()
    paths = write_images(tmp_path)
    x = torch.stack([ci.eval_preprocess(ci.read_image(p, channels=1), 32) for p in paths])
    from_paths = model.encode_images(paths, batch_size=2)
    assert from_paths.shape == (5, 8) and not from_paths.requires_grad
    assert model.training and model.cpp.training  # the mode is restored
    assert torch.allclose(model.encode_images(x), from_paths, atol=1e-6)
    model.eval()
    with torch.no_grad():
        assert torch.allclose(model.encode_image(x), from_paths, atol=1e-6)
        feats = model.image_features(x)
    assert not model.training
    assert torch.allclose(model.encode_images([str(p) for p in paths], projected=False), feats, atol=1e-6)
    with pytest.raises(TypeError, match="wrap a single path in a list"):
        model.encode_images(str(paths[0]))
    with pytest.raises(ValueError, match="float tensor"):
        model.encode_images(torch.zeros(2, 32, 32))
    with pytest.raises(ValueError, match="batch_size must be an int > 0, got 0"):
        model.encode_images(x, batch_size=0)


def test_encode_texts_uses_the_vocab_beside_the_checkpoint(tmp_path):
    model, _ = model_and_batch()
    vocab = ct.build_wordpiece_vocab(SENTENCES, vocab_size=64, min_frequency=1)
    ct.save_vocab(vocab, str(tmp_path / "vocab.txt"))
    with pytest.raises(ValueError, match="carries no vocabulary"):
        model.encode_texts(SENTENCES)
    u = model.encode_texts(SENTENCES, vocab=tmp_path / "vocab.txt")
    assert u.shape == (5, 8)
    assert torch.equal(model.encode_texts(SENTENCES, vocab=tmp_path / "vocab.txt"), u)  # deterministic
    one_by_one = model.encode_texts(SENTENCES, batch_size=1, vocab=tmp_path / "vocab.txt")
    assert torch.allclose(one_by_one, u, atol=1e-5)
    # The same numbers as tokenising by hand and calling the encoder in eval mode.
    tok = ct.WordPieceTokenizer.from_vocab_file(str(tmp_path / "vocab.txt"), max_length=16)
    enc = tok.encode_batch(SENTENCES)
    model.eval()
    with torch.no_grad():
        assert torch.allclose(model.encode_text(enc["input_ids"], enc["attention_mask"]), u, atol=1e-6)
        feats = model.text_features(enc["input_ids"], enc["attention_mask"])
    assert torch.allclose(model.encode_texts(SENTENCES, projected=False, vocab=tmp_path / "vocab.txt"),
                          feats, atol=1e-6)
    # Loaded from a file: vocab.txt beside it, or in the folder above it, is found.
    model.save(tmp_path / "model.pt")
    assert torch.allclose(cm.load(tmp_path / "model.pt").encode_texts(SENTENCES), u, atol=1e-6)
    (tmp_path / "run").mkdir()
    model.save(tmp_path / "run" / "model.pt")
    assert torch.allclose(cm.load(tmp_path / "run" / "model.pt").encode_texts(SENTENCES), u, atol=1e-6)
    lone = tmp_path / "lone"
    lone.mkdir()
    model.save(lone / "sub.pt")
    (lone / "deeper").mkdir()
    model.save(lone / "deeper" / "m.pt")
    with pytest.raises(ValueError, match="carries no vocabulary and there is no vocab.txt beside it"):
        cm.load(lone / "deeper" / "m.pt").encode_texts(SENTENCES)
    with pytest.raises(ValueError, match="vocab: no such file"):
        model.encode_texts(SENTENCES, vocab=tmp_path / "missing.txt")
    with pytest.raises(TypeError, match="wrap a single text in a list"):
        model.encode_texts("No effusion.", vocab=tmp_path / "vocab.txt")


def test_a_model_carrying_its_vocabulary_needs_no_file_and_refuses_another(tmp_path):
    """A trained model carries its vocabulary (the trainer records it); it travels through save/load
    and pickling, and a different vocab.txt is refused with both fingerprints."""
    model, _ = model_and_batch()
    vocab = ct.build_wordpiece_vocab(SENTENCES, vocab_size=64, min_frequency=1)
    ct.save_vocab(vocab, str(tmp_path / "vocab.txt"))
    u = model.encode_texts(SENTENCES, vocab=tmp_path / "vocab.txt")
    model.cpp.vocabulary = list(vocab)
    assert torch.equal(model.encode_texts(SENTENCES), u)
    (tmp_path / "elsewhere").mkdir()
    model.save(tmp_path / "elsewhere" / "m.pt")
    assert cm.read_vocabulary(tmp_path / "elsewhere" / "m.pt") == list(vocab)
    loaded = cm.load(tmp_path / "elsewhere" / "m.pt")
    assert torch.allclose(loaded.encode_texts(SENTENCES), u, atol=1e-6)
    assert torch.allclose(pickle.loads(pickle.dumps(loaded)).encode_texts(SENTENCES), u, atol=1e-6)
    other = list(reversed(vocab))
    (tmp_path / "other.txt").write_text("".join(t + "\n" for t in other))
    with pytest.raises(ValueError, match="is not the vocabulary the model"):
        loaded.encode_texts(SENTENCES, vocab=tmp_path / "other.txt")
    assert torch.allclose(loaded.encode_texts(SENTENCES, vocab=tmp_path / "vocab.txt"), u, atol=1e-6)


def test_functions_that_take_a_model_accept_the_module_and_the_cpp_object(tmp_path):
    model, _ = model_and_batch()
    assert cm.ConVIRTModel(model.cpp).cpp is model.cpp
    with pytest.raises(ValueError, match="base_width 8"):
        cm.export_torchvision(model.cpp, tmp_path / "x.pth")
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("".join(f"t{i}\n" for i in range(64)))
    cm.export_hf_bert(model, tmp_path / "bert", vocab)
    sd, _ = cm.hf_bert_state_dict(tmp_path / "bert" / "model.safetensors")
    assert torch.equal(sd["embeddings.word_embeddings.weight"],
                       model.state_dict()["text_encoder.embeddings.word_embeddings.weight"])
    # Checkpoints written from the module load back into it, under the same names.
    model.save(tmp_path / "m.pt")
    assert set(cm.read_state_dict(str(tmp_path / "m.pt"))) == set(model.state_dict())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_to_cuda_moves_the_cpp_model(tmp_path):
    model, (images, ids, mask) = model_and_batch()
    model.eval()
    with torch.no_grad():
        v, u = model(images, ids, mask)
    model.to("cuda")
    assert all(t.is_cuda for t in model.cpp.parameters())
    assert all(t.is_cuda for t in model.cpp.named_buffers().values())
    with torch.no_grad():
        vc, uc = model(images.cuda(), ids.cuda(), mask.cuda())
    assert torch.allclose(vc.cpu(), v, atol=1e-4) and torch.allclose(uc.cpu(), u, atol=1e-4)
    assert model.encode_images(images).is_cuda
    torch.save(model, tmp_path / "m.pth")
    again = torch.load(tmp_path / "m.pth", weights_only=False)
    assert all(t.is_cuda for t in again.cpp.parameters())
    model.cpu()
    assert not any(t.is_cuda for t in model.cpp.parameters())


def test_broadcast_parameters_takes_the_model():
    """convirt.dist.broadcast_parameters walks parameters() and buffers(), which the C++ class alone
    did not have; on one process it leaves the weights as they are."""
    dist = pytest.importorskip("convirt.dist")
    model, _ = model_and_batch()
    before = {k: t.clone() for k, t in model.state_dict().items()}
    dist.broadcast_parameters(model, dist.DistributedContext())
    after = model.cpp.state_dict()
    assert all(torch.equal(after[k], before[k]) for k in before)
