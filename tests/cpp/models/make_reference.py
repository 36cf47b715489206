"""Reference outputs for test_models: torchvision ResNets, and BERT written from torch primitives and the
Hugging Face formulas (transformers is not needed). Usage: make_reference.py MODE DIR

  resnet DIR        write DIR/<arch>.pth (torch.save of the state_dict) and DIR/<arch>_ref.pt
  bert DIR          write DIR/config.json, DIR/pytorch_model.bin ("bert." prefix + a pretraining head)
                    and DIR/bert_ref.pt
  check_bert DIR    run the reference on DIR/out/{model.safetensors,pytorch_model.bin} and compare with
                    DIR/cpp_out.pt
Exit status 0 when every comparison holds, 77 when torch or torchvision cannot be imported (the C++
test then skips with a warning).
"""
import copy
import json
import math
import os
import struct
import sys

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    sys.exit(77)


def resnet_body(m, x):
    x = m.maxpool(m.relu(m.bn1(m.conv1(x))))
    x = m.layer4(m.layer3(m.layer2(m.layer1(x))))
    return torch.flatten(m.avgpool(x), 1)


def randomize_bn(m, g):
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            n = mod.num_features
            mod.weight.data = 1 + 0.2 * torch.randn(n, generator=g)
            mod.bias.data = 0.2 * torch.randn(n, generator=g)
            mod.running_mean = 0.1 * torch.randn(n, generator=g)
            mod.running_var = 0.5 + torch.rand(n, generator=g)
            mod.num_batches_tracked = torch.tensor(7)


def make_resnet(d):
    try:
        import torchvision
    except ImportError:
        sys.exit(77)
    g = torch.Generator().manual_seed(0)
    for arch in ("resnet18", "resnet50"):
        torch.manual_seed(0)
        m = getattr(torchvision.models, arch)()
        randomize_bn(m, g)
        torch.save(m.state_dict(), os.path.join(d, arch + ".pth"))
        x = torch.randn(2, 3, 64, 64, generator=g)
        grey = torch.randn(2, 1, 64, 64, generator=g)
        out = {"input": x, "grey": grey}
        with torch.no_grad():
            m.eval()
            out["eval_features"] = resnet_body(m, x)
            out["eval_logits"] = m(x)
            out["grey_eval_features"] = resnet_body(m, grey.expand(2, 3, 64, 64))
            t = copy.deepcopy(m).train()
            out["train_features"] = resnet_body(t, x)
            out["train_bn1_running_mean"] = t.bn1.running_mean.clone()
            out["train_layer4_bn_running_var"] = t.layer4[-1].bn2.running_var.clone()
        torch.save(out, os.path.join(d, arch + "_ref.pt"))


CFG = dict(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
           hidden_act="gelu", hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
           max_position_embeddings=40, type_vocab_size=2, layer_norm_eps=1e-12, pad_token_id=0,
           model_type="bert", architectures=["BertForPreTraining"])


def random_bert_state(cfg, g):
    h, i = cfg["hidden_size"], cfg["intermediate_size"]
    sd = {}

    def lin(name, o, n):
        sd[name + ".weight"] = 0.2 * torch.randn(o, n, generator=g)
        sd[name + ".bias"] = 0.1 * torch.randn(o, generator=g)

    def ln(name):
        sd[name + ".weight"] = 1 + 0.1 * torch.randn(h, generator=g)
        sd[name + ".bias"] = 0.1 * torch.randn(h, generator=g)

    sd["embeddings.word_embeddings.weight"] = torch.randn(cfg["vocab_size"], h, generator=g)
    sd["embeddings.position_embeddings.weight"] = torch.randn(cfg["max_position_embeddings"], h, generator=g)
    sd["embeddings.token_type_embeddings.weight"] = torch.randn(cfg["type_vocab_size"], h, generator=g)
    ln("embeddings.LayerNorm")
    for k in range(cfg["num_hidden_layers"]):
        p = "encoder.layer.%d." % k
        for n in ("query", "key", "value"):
            lin(p + "attention.self." + n, h, h)
        lin(p + "attention.output.dense", h, h)
        ln(p + "attention.output.LayerNorm")
        lin(p + "intermediate.dense", i, h)
        lin(p + "output.dense", h, i)
        ln(p + "output.LayerNorm")
    lin("pooler.dense", h, h)
    return sd


def bert_reference(sd, cfg, ids, mask):
    """BertModel's forward in eval mode, from the HF formulas."""
    h, nh = cfg["hidden_size"], cfg["num_attention_heads"]
    eps = cfg["layer_norm_eps"]
    b, length = ids.shape
    pos = torch.arange(length)
    x = sd["embeddings.word_embeddings.weight"][ids] + sd["embeddings.position_embeddings.weight"][pos] \
        + sd["embeddings.token_type_embeddings.weight"][torch.zeros_like(ids)]
    x = F.layer_norm(x, (h,), sd["embeddings.LayerNorm.weight"], sd["embeddings.LayerNorm.bias"], eps)
    ext = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
    d = h // nh

    def lin(t, name):
        return t @ sd[name + ".weight"].T + sd[name + ".bias"]

    for k in range(cfg["num_hidden_layers"]):
        p = "encoder.layer.%d." % k
        q, kk, v = (lin(x, p + "attention.self." + n).view(b, length, nh, d).transpose(1, 2)
                    for n in ("query", "key", "value"))
        scores = q @ kk.transpose(-1, -2) / math.sqrt(d) + ext
        ctx = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, length, h)
        a = F.layer_norm(lin(ctx, p + "attention.output.dense") + x, (h,),
                         sd[p + "attention.output.LayerNorm.weight"], sd[p + "attention.output.LayerNorm.bias"], eps)
        inter = lin(a, p + "intermediate.dense")
        inter = 0.5 * inter * (1.0 + torch.erf(inter / math.sqrt(2.0)))
        x = F.layer_norm(lin(inter, p + "output.dense") + a, (h,), sd[p + "output.LayerNorm.weight"],
                         sd[p + "output.LayerNorm.bias"], eps)
    m = mask[:, :, None].bool()
    return {"hidden": x,
            "max": x.masked_fill(~m, float("-inf")).amax(1),
            "mean": (x * m).sum(1) / m.sum(1),
            "cls": x[:, 0],
            "pooler": torch.tanh(lin(x[:, 0], "pooler.dense"))}


def make_bert(d):
    g = torch.Generator().manual_seed(1)
    sd = random_bert_state(CFG, g)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(CFG, f)
    saved = {"bert." + k: v for k, v in sd.items()}
    saved["bert.embeddings.position_ids"] = torch.arange(CFG["max_position_embeddings"])[None]
    saved["cls.predictions.bias"] = torch.zeros(CFG["vocab_size"])
    torch.save(saved, os.path.join(d, "pytorch_model.bin"))
    lengths = [12, 7, 1]
    ids = torch.randint(1, CFG["vocab_size"], (3, 12), generator=g)
    mask = torch.zeros(3, 12, dtype=torch.long)
    for r, n in enumerate(lengths):
        mask[r, :n] = 1
        ids[r, n:] = 0
    out = bert_reference(sd, CFG, ids, mask)
    out.update(input_ids=ids, attention_mask=mask)
    torch.save(out, os.path.join(d, "bert_ref.pt"))


def read_safetensors(path):
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    dtypes = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64, "F16": torch.float16}
    out = {}
    for k, e in header.items():
        if k == "__metadata__":
            continue
        b, end = e["data_offsets"]
        buf = bytearray(data[8 + n + b:8 + n + end])
        out[k] = torch.frombuffer(buf, dtype=dtypes[e["dtype"]]).reshape(e["shape"]) if buf else \
            torch.empty(e["shape"], dtype=dtypes[e["dtype"]])
    return out


def check_bert(d):
    out_dir = os.path.join(d, "out")
    cfg = json.load(open(os.path.join(out_dir, "config.json")))
    for key in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size"):
        assert cfg[key] == CFG[key], (key, cfg[key])
    ref = torch.load(os.path.join(d, "cpp_out.pt"))
    for name, sd in (("safetensors", read_safetensors(os.path.join(out_dir, "model.safetensors"))),
                     ("bin", torch.load(os.path.join(out_dir, "pytorch_model.bin")))):
        expected = set(random_bert_state(CFG, torch.Generator().manual_seed(0)))
        assert set(sd) == expected, (name, set(sd) ^ expected)
        got = bert_reference(sd, cfg, ref["input_ids"], ref["attention_mask"])
        err = (got["hidden"] - ref["hidden"]).abs().max().item()
        print(name, "max abs diff", err)
        assert err < 1e-4, (name, err)


if __name__ == "__main__":
    mode, d = sys.argv[1], sys.argv[2]
    {"resnet": make_resnet, "bert": make_bert, "check_bert": check_bert}[mode](d)
