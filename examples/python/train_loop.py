"""ConVIRT inside your own PyTorch training loop: the reference for Python users.

The loop is ordinary PyTorch (DataLoader, nn.Module, Adam, autocast where the device has it) around
torchvision's ResNet-18; convirt supplies the pieces a ConVIRT loop needs and nothing else:

* ``convirt.data``: the synthetic generator and the dataset readers (``MimicCxrDataset`` for the
  image-report pairs, ``ChexpertDataset`` and ``RetrievalSet`` for evaluation) as torch Datasets.
  Point ``--mimic-root`` at a real MIMIC-CXR-JPG copy and the same code trains on it;
* ``convirt.transforms``: the paper's augmentation t_v (run in the DataLoader workers) and the
  evaluation preprocessing;
* ``convirt.text``: the WordPiece vocabulary builder and tokenizer;
* ``convirt.InfoNCELoss``: the bidirectional contrastive loss (tau 0.1, lambda 0.75);
* ``convirt.eval``: the paper's text->image retrieval Precision@k (Table 2) and the linear protocol
  on frozen features (Table 1), run on this loop's own modules.

The image encoder stays a plain ``torchvision.models.resnet18`` (one input channel), so its weights
load into torchvision afterwards (see use_with_torchvision.py). metrics.json in --out records the
evaluation.

    PYTHONPATH=build/python /usr/bin/python3 examples/python/train_loop.py --out /tmp/convirt_demo

With the defaults (200 steps at 32 px, obvious findings, no augmentation) text->image P@10 reaches
about 0.4 against a chance of 0.125; ``--augment paper`` applies the paper's t_v, which needs larger
images and longer runs.
"""
import argparse
import json
import os
import time

import torch
import torch.nn as nn
import torchvision

import convirt
import convirt.data as D
import convirt.eval as ev
import convirt.text as ct
import convirt.transforms as T


class TextEncoder(nn.Module):
    """Token embeddings + a small MLP, max-pooled over the non-padding tokens (ConVIRT pools by max)."""

    def __init__(self, vocab_size: int, width: int = 128):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, width)
        self.mlp = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width))

    def forward(self, ids, mask):
        h = self.mlp(self.embed(ids))
        return h.masked_fill(~mask.bool()[..., None], float("-inf")).amax(dim=1)


def projection(width_in: int, dim: int):
    """The paper's projection head: Linear -> ReLU -> Linear."""
    return nn.Sequential(nn.Linear(width_in, width_in), nn.ReLU(), nn.Linear(width_in, dim))


class ConVIRT(nn.Module):
    """f_v, f_u and the two heads; encode_* give the projected embeddings the loss compares."""

    def __init__(self, vocab_size: int, dim: int = 128):
        super().__init__()
        self.image_encoder = torchvision.models.resnet18(num_classes=10)
        self.image_encoder.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.image_encoder.fc = nn.Identity()  # f_v: the 512-d pooled features
        self.text_encoder = TextEncoder(vocab_size)
        self.image_head, self.text_head = projection(512, dim), projection(128, dim)

    def encode_images(self, images):
        return self.image_head(self.image_encoder(images))

    def encode_texts(self, ids, mask):
        return self.text_head(self.text_encoder(ids, mask))


def autocast_settings(device: torch.device, mode: str):
    """(enabled, dtype): float16 on CUDA; bfloat16 on CPU only when asked (on most CPUs it is slower
    than float32)."""
    # The dtype is the device's autocast dtype even when disabled: torch 1.x refuses any other.
    dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    return mode == "on" or (mode == "auto" and device.type == "cuda"), dtype


@torch.no_grad()
def embed_dataset(model, dataset, device, projected=True, batch_size=128):
    """Embeddings (or f_v features) and labels of a labelled convirt dataset, in order."""
    model.eval()
    out, labels = [], []
    for batch in torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False):
        x = batch["image"].to(device)
        out.append((model.encode_images(x) if projected else model.image_encoder(x)).float().cpu())
        labels.append(batch["labels"])
    model.train()
    return torch.cat(out), torch.cat(labels)


@torch.no_grad()
def embed_texts(model, tokenizer, texts, device):
    model.eval()
    enc = tokenizer.encode_batch(list(texts), padding="longest")
    u = model.encode_texts(enc["input_ids"].to(device), enc["attention_mask"].to(device)).float().cpu()
    model.train()
    return u


def text_to_image_retrieval(model, tokenizer, retrieval: D.RetrievalSet, device, ks=(5, 10, 50)):
    """Table 2's zero-shot text->image retrieval: each text query ranks the candidate images."""
    cand, cand_labels = embed_dataset(model, retrieval.candidates, device)
    queries = retrieval.text_queries
    q = embed_texts(model, tokenizer, [x["text"] for x in queries], device)
    q_labels = torch.tensor([x["category"] for x in queries])
    r = ev.retrieval_precision(q, q_labels, cand, cand_labels.argmax(1), ks=ks)
    return r["precision"]


def linear_protocol(model, train_set, test_set, device, seed=0):
    """Table 1's linear protocol: a logistic-regression head on the frozen f_v features (mean AUC)."""
    x, y = embed_dataset(model, train_set, device, projected=False)
    x_test, y_test = embed_dataset(model, test_set, device, projected=False)
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(x), generator=g)
    n_val = max(1, len(x) // 5)
    val, tr = order[:n_val], order[n_val:]
    r = ev.linear_probe((x[tr], y[tr]), (x[val], y[val]), (x_test, y_test), learning_rate=1e-3,
                        max_epochs=30, seed=seed)
    return r["test_metric"]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/python_demo")
    p.add_argument("--data", default="", help="synthetic data folder (default: OUT/data, generated once)")
    p.add_argument("--mimic-root", default="", help="train on this MIMIC-CXR-JPG root instead")
    p.add_argument("--studies", type=int, default=600, help="synthetic training studies")
    p.add_argument("--difficulty", type=float, default=0.0,
                   help="synthetic: how faint the findings are (0 = obvious, 1 = barely visible)")
    p.add_argument("--prevalence", type=float, default=0.3, help="synthetic: share of studies with each finding")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    # At 32 px the paper's crops and blur hide the findings from a run this short; use "paper" with
    # larger images and longer runs, as the paper does.
    p.add_argument("--augment", choices=["paper", "none"], default="none",
                   help="paper: the paper's t_v; none: evaluation preprocessing only")
    p.add_argument("--amp", choices=["auto", "on", "off"], default="auto",
                   help="autocast: auto = float16 on CUDA, off on CPU")
    p.add_argument("--eval-every", type=int, default=50, help="retrieval P@10 every N steps (0: at the end)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.manual_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    amp, amp_dtype = autocast_settings(device, args.amp)

    # 1. Data: the synthetic set in the MIMIC-CXR-JPG layout (plus its labelled and retrieval sets).
    data = D.generate_synthetic(args.data or os.path.join(args.out, "data"), train_studies=args.studies,
                                validate_studies=20, test_studies=4, chexpert_train=200,
                                chexpert_valid=100, retrieval_candidates=20, image_size=args.image_size,
                                difficulty=args.difficulty, prevalence=args.prevalence,
                                lateral_fraction=0.0, seed=args.seed)
    augment = (T.paper_augmentation(size=args.image_size) if args.augment == "paper"
               else T.eval_transform(args.image_size))
    pairs = D.MimicCxrDataset(args.mimic_root or data["mimic_root"], split="train", transform=augment,
                              channels=1)
    evaluation = T.eval_transform(args.image_size)
    retrieval = D.RetrievalSet(data["retrieval_dir"], image_root=data["chexpert_root"],
                               transform=evaluation, channels=1)
    chexpert_train = D.ChexpertDataset(data["chexpert_train_csv"], transform=evaluation, channels=1)
    chexpert_test = D.ChexpertDataset(data["chexpert_valid_csv"], transform=evaluation, channels=1)

    # 2. The tokenizer: a WordPiece vocabulary built from the training reports' sentences.
    sentences = [s for _, study_sentences, _, _ in pairs.records() for s in study_sentences]
    vocab = ct.build_wordpiece_vocab(sentences, vocab_size=1000, min_frequency=1)
    tokenizer = ct.WordPieceTokenizer(vocab, max_length=32)

    # 3. Model, loss, optimiser: plain PyTorch with convirt's loss.
    model = ConVIRT(tokenizer.vocab_size).to(device)
    criterion = convirt.InfoNCELoss(temperature=0.1, image_to_text_weight=0.75)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=1e-6)
    scaler = torch.cuda.amp.GradScaler(enabled=amp and device.type == "cuda")
    # Each item is one augmented view and one sentence sampled from its report (convirt's reader does
    # both, seeded from torch's generator, which the DataLoader seeds per worker).
    loader = torch.utils.data.DataLoader(pairs, batch_size=args.batch_size, shuffle=True, drop_last=True,
                                         num_workers=args.workers, persistent_workers=args.workers > 0)
    print(f"{len(pairs)} training studies, vocabulary {tokenizer.vocab_size}, device {device}, "
          f"autocast {'on (' + str(amp_dtype).replace('torch.', '') + ')' if amp else 'off'}", flush=True)

    history = []
    step, start = 0, time.time()
    while step < args.steps:
        for batch in loader:
            enc = tokenizer.encode_batch(batch["text"], padding="longest")
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp):
                v = model.encode_images(batch["image"].to(device))
                u = model.encode_texts(enc["input_ids"].to(device), enc["attention_mask"].to(device))
            # The loss in float32: its softmax over the batch is where half precision loses most.
            out = criterion(v.float(), u.float(), return_stats=True)
            optimizer.zero_grad()
            scaler.scale(out.loss).backward()
            scaler.step(optimizer)
            scaler.update()
            step += 1
            if step % 25 == 0 or step == 1:
                print(f"step {step:4d}  loss {out.loss.item():.4f}  "
                      f"acc img->txt {out.image_to_text_accuracy.item():.2f}  "
                      f"txt->img {out.text_to_image_accuracy.item():.2f}", flush=True)
            if args.eval_every and step % args.eval_every == 0 and step < args.steps:
                p10 = text_to_image_retrieval(model, tokenizer, retrieval, device, ks=(10,))[10]
                history.append({"step": step, "text_to_image_p10": p10})
                print(f"step {step:4d}  text->image P@10 {p10:.3f}", flush=True)
            if step >= args.steps:
                break
    train_seconds = time.time() - start

    # 4. Evaluation with convirt.eval on this loop's own modules.
    precision = text_to_image_retrieval(model, tokenizer, retrieval, device)
    chance = 1.0 / len(retrieval.categories)
    auc = linear_protocol(model, chexpert_train, chexpert_test, device, seed=args.seed)
    print(f"text->image retrieval: " + ", ".join(f"P@{k} {v:.3f}" for k, v in sorted(precision.items()))
          + f" (chance {chance:.3f})")
    print(f"linear protocol on the frozen encoder: mean AUC {auc:.3f} (chance 0.5)")

    path = os.path.join(args.out, "resnet18_1ch.pt")
    torch.save(model.image_encoder.state_dict(), path)
    tokenizer.save_vocab(os.path.join(args.out, "vocab.txt"))
    metrics = {"steps": step, "train_seconds": train_seconds, "autocast": amp,
               "text_to_image_precision": {str(k): v for k, v in precision.items()},
               "chance": chance, "linear_mean_auc": auc, "history": history}
    with open(os.path.join(args.out, "metrics.json"), "w", encoding="utf-8") as f:
        json.dump(metrics, f, indent=2)
    print(f"saved the image encoder (a torchvision ResNet-18 state_dict without fc) to {path}")


if __name__ == "__main__":
    main()
