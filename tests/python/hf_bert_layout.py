"""An independent reader of a Hugging Face BERT folder, written from the layout transformers loads
(``BertConfig``'s config.json keys, the safetensors byte format, ``BertModel``'s parameter names and
shapes in modeling_bert.py, ``BertTokenizer``'s vocab.txt / tokenizer_config.json /
special_tokens_map.json). It uses only json, struct and torch, never convirt, so a test that reads a
convirt export with it checks the export against the format and not against convirt's own reader.
transformers itself is not installable here."""

import json
import os
import struct

import torch

# The keys BertConfig.__init__ takes (transformers' configuration_bert.py) with their JSON types, and
# the PretrainedConfig keys a BERT checkpoint carries.
BERT_CONFIG_KEYS = {
    "vocab_size": int, "hidden_size": int, "num_hidden_layers": int, "num_attention_heads": int,
    "intermediate_size": int, "hidden_act": str, "hidden_dropout_prob": float,
    "attention_probs_dropout_prob": float, "max_position_embeddings": int, "type_vocab_size": int,
    "initializer_range": float, "layer_norm_eps": float, "pad_token_id": int,
    "position_embedding_type": str, "model_type": str, "architectures": list,
}

SPECIAL_TOKENS = {"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]",
                  "cls_token": "[CLS]", "mask_token": "[MASK]"}

_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64,
           "I64": torch.int64, "I32": torch.int32}


def read_safetensors(path):
    """{name: tensor} and the metadata of a .safetensors file: an 8-byte little-endian header size,
    the JSON header, then the tensors' bytes at their data_offsets."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    body = data[8 + n:]
    tensors = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        dtype = _DTYPES[info["dtype"]]
        t = torch.frombuffer(bytearray(body[begin:end]), dtype=dtype) if end > begin else torch.empty(0, dtype=dtype)
        tensors[name] = t.reshape(info["shape"])
    return tensors, meta


def bert_parameter_shapes(cfg, pooler=True):
    """BertModel's state_dict names and shapes for a config (modeling_bert.py: BertEmbeddings,
    BertLayer = BertAttention + BertIntermediate + BertOutput, BertPooler)."""
    h, i = cfg["hidden_size"], cfg["intermediate_size"]
    shapes = {
        "embeddings.word_embeddings.weight": (cfg["vocab_size"], h),
        "embeddings.position_embeddings.weight": (cfg["max_position_embeddings"], h),
        "embeddings.token_type_embeddings.weight": (cfg["type_vocab_size"], h),
        "embeddings.LayerNorm.weight": (h,), "embeddings.LayerNorm.bias": (h,),
    }
    for l in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{l}."
        for m in ("query", "key", "value"):
            shapes[p + f"attention.self.{m}.weight"] = (h, h)
            shapes[p + f"attention.self.{m}.bias"] = (h,)
        shapes[p + "attention.output.dense.weight"] = (h, h)
        shapes[p + "attention.output.dense.bias"] = (h,)
        shapes[p + "attention.output.LayerNorm.weight"] = (h,)
        shapes[p + "attention.output.LayerNorm.bias"] = (h,)
        shapes[p + "intermediate.dense.weight"] = (i, h)
        shapes[p + "intermediate.dense.bias"] = (i,)
        shapes[p + "output.dense.weight"] = (h, i)
        shapes[p + "output.dense.bias"] = (h,)
        shapes[p + "output.LayerNorm.weight"] = (h,)
        shapes[p + "output.LayerNorm.bias"] = (h,)
    if pooler:
        shapes["pooler.dense.weight"] = (h, h)
        shapes["pooler.dense.bias"] = (h,)
    return shapes


def check_config(cfg):
    """Problems with config.json as BertConfig reads it (an empty list when none)."""
    problems = []
    for key, kind in BERT_CONFIG_KEYS.items():
        if key not in cfg:
            problems.append(f"config.json lacks {key!r}")
        elif not isinstance(cfg[key], kind) and not (kind is float and isinstance(cfg[key], int)):
            problems.append(f"config.json {key!r} is {type(cfg[key]).__name__}, expected {kind.__name__}")
    if cfg.get("model_type") != "bert":
        problems.append(f"model_type is {cfg.get('model_type')!r}, expected 'bert'")
    if cfg.get("hidden_size", 0) % max(1, cfg.get("num_attention_heads", 1)):
        problems.append("hidden_size is not a multiple of num_attention_heads")
    return problems


def read_folder(path):
    """Reads and checks a HF BERT folder. Returns {"config", "tensors", "vocab", "tokenizer_config",
    "special_tokens"}; raises AssertionError listing every problem found."""
    problems = []
    with open(os.path.join(path, "config.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    problems += check_config(cfg)
    weights = os.path.join(path, "model.safetensors")
    if os.path.exists(weights):
        tensors, meta = read_safetensors(weights)
        if meta.get("format") != "pt":
            problems.append(f"model.safetensors metadata format is {meta.get('format')!r}, transformers wants 'pt'")
    else:
        tensors = torch.load(os.path.join(path, "pytorch_model.bin"), map_location="cpu")
    # BertModel.from_pretrained takes names with or without the "bert." prefix of BertFor* heads.
    tensors = {k[len("bert."):] if k.startswith("bert.") else k: v for k, v in tensors.items()}
    want = bert_parameter_shapes(cfg, pooler="pooler.dense.weight" in tensors)
    for name, shape in want.items():
        if name not in tensors:
            problems.append(f"missing tensor {name}")
        elif tuple(tensors[name].shape) != shape:
            problems.append(f"{name} has shape {tuple(tensors[name].shape)}, expected {shape}")
    extra = sorted(set(tensors) - set(want) - {"embeddings.position_ids"})
    if extra:
        problems.append(f"tensors BertModel does not have: {extra[:5]}")
    vocab = []
    vocab_path = os.path.join(path, "vocab.txt")
    if not os.path.exists(vocab_path):
        problems.append("no vocab.txt")
    else:
        with open(vocab_path, encoding="utf-8") as f:
            vocab = [line.rstrip("\n") for line in f]
        if len(vocab) != cfg.get("vocab_size"):
            problems.append(f"vocab.txt has {len(vocab)} entries, config vocab_size is {cfg.get('vocab_size')}")
    tok_cfg, specials = {}, {}
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        file = os.path.join(path, name)
        if not os.path.exists(file):
            problems.append(f"no {name}")
            continue
        with open(file, encoding="utf-8") as f:
            (tok_cfg if name == "tokenizer_config.json" else specials).update(json.load(f))
    if tok_cfg:
        if tok_cfg.get("tokenizer_class") not in ("BertTokenizer", "BertTokenizerFast"):
            problems.append(f"tokenizer_class is {tok_cfg.get('tokenizer_class')!r}")
        if not isinstance(tok_cfg.get("do_lower_case"), bool):
            problems.append("tokenizer_config.json lacks a boolean do_lower_case")
        if tok_cfg.get("model_max_length", 0) > cfg.get("max_position_embeddings", 0):
            problems.append("model_max_length exceeds max_position_embeddings")
    for key, token in SPECIAL_TOKENS.items():
        for source, d in (("special_tokens_map.json", specials), ("tokenizer_config.json", tok_cfg)):
            if d and d.get(key) != token:
                problems.append(f"{source} {key} is {d.get(key)!r}, expected {token!r}")
        if vocab and token not in vocab:
            problems.append(f"vocab.txt lacks the special token {token}")
    assert not problems, "HF BERT folder " + path + ": " + "; ".join(problems)
    return {"config": cfg, "tensors": tensors, "vocab": vocab, "tokenizer_config": tok_cfg,
            "special_tokens": specials}


def bert_forward(tensors, cfg, input_ids, attention_mask):
    """BertModel's last hidden state [B, T, H] in plain torch from the HF tensors (modeling_bert.py,
    eval mode, absolute positions, token type 0, GELU), to check that the weights mean what their
    names say."""
    F = torch.nn.functional
    h, heads = cfg["hidden_size"], cfg["num_attention_heads"]
    eps = cfg["layer_norm_eps"]
    t = lambda n: tensors[n].float()  # noqa: E731
    b, n = input_ids.shape
    x = (t("embeddings.word_embeddings.weight")[input_ids]
         + t("embeddings.position_embeddings.weight")[:n][None]
         + t("embeddings.token_type_embeddings.weight")[0][None, None])
    x = F.layer_norm(x, (h,), t("embeddings.LayerNorm.weight"), t("embeddings.LayerNorm.bias"), eps)
    bias = (1.0 - attention_mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
    for l in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{l}."
        lin = lambda z, name: F.linear(z, t(p + name + ".weight"), t(p + name + ".bias"))  # noqa: E731
        split = lambda z: z.view(b, n, heads, h // heads).transpose(1, 2)  # noqa: E731
        q, k, v = (split(lin(x, f"attention.self.{m}")) for m in ("query", "key", "value"))
        att = torch.softmax(q @ k.transpose(-1, -2) / (h // heads) ** 0.5 + bias, dim=-1)
        ctx = (att @ v).transpose(1, 2).reshape(b, n, h)
        x = F.layer_norm(lin(ctx, "attention.output.dense") + x, (h,), t(p + "attention.output.LayerNorm.weight"),
                         t(p + "attention.output.LayerNorm.bias"), eps)
        inter = F.gelu(lin(x, "intermediate.dense"))
        x = F.layer_norm(lin(inter, "output.dense") + x, (h,), t(p + "output.LayerNorm.weight"),
                         t(p + "output.LayerNorm.bias"), eps)
    return x
