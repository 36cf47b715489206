"""ConVIRT's loss, augmentation and tokenizer inside a plain PyTorch training loop.

Everything here is ordinary PyTorch (Dataset, DataLoader with worker processes, nn.Module, Adam);
convirt supplies three pieces:

* ``convirt.transforms.paper_augmentation``: the paper's t_v, run in the DataLoader workers;
* ``convirt.text``: the WordPiece vocabulary builder and tokenizer, plus sentence splitting/sampling;
* ``convirt.InfoNCELoss``: the bidirectional contrastive loss (tau 0.1, lambda 0.75).

The image encoder is torchvision's ResNet-18 (one input channel), so its weights can be loaded into
torchvision afterwards (see use_with_torchvision.py). The data are toy "radiographs": a blob whose
position and size the report describes.

    PYTHONPATH=build/python /usr/bin/python3 examples/python/train_loop.py --steps 60 --out /tmp/convirt_demo
"""
import argparse
import os
import random

import torch
import torch.nn as nn
import torchvision

import convirt
import convirt.text as ct
import convirt.transforms as T

SIDES = ["left", "right"]
SIZES = ["small", "large"]


def make_pair(index: int, size: int = 72):
    """A gray image with a bright blob and the report that describes it."""
    rng = random.Random(index)
    side, big = rng.randrange(2), rng.randrange(2)
    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                            indexing="ij")
    cx = size * (0.3 if side == 0 else 0.7) + rng.uniform(-4, 4)
    cy = size * 0.5 + rng.uniform(-8, 8)
    r = size * (0.08 if big == 0 else 0.18)
    image = 0.25 + 0.6 * torch.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))
    image = (image + 0.05 * torch.randn(size, size, generator=torch.Generator().manual_seed(index))).clamp(0, 1)
    report = (f"FINDINGS: There is a {SIZES[big]} opacity in the {SIDES[side]} lung. "
              f"The heart size is normal. No pneumothorax. IMPRESSION: {SIZES[big].capitalize()} "
              f"{SIDES[side]} opacity.")
    return image[None], report


class PairDataset(torch.utils.data.Dataset):
    """Images with their reports; one augmented view and one sampled sentence per item."""

    def __init__(self, n: int, tokenizer: ct.WordPieceTokenizer, image_size: int):
        self.pairs = [make_pair(i) for i in range(n)]
        self.sentences = [ct.split_sentences(ct.pretraining_text(r)) for _, r in self.pairs]
        self.tokenizer = tokenizer
        self.augment = T.paper_augmentation(size=image_size)

    def __len__(self):
        return len(self.pairs)

    def __getitem__(self, i):
        image, _ = self.pairs[i]
        # No seed: drawn from torch's generator, which the DataLoader seeds per worker.
        view = self.augment(image)
        sentence = random.choice(self.sentences[i])
        return view, sentence


def collate(tokenizer):
    def fn(items):
        images = torch.stack([v for v, _ in items])
        batch = tokenizer.encode_batch([s for _, s in items], padding="longest")
        return images, batch["input_ids"], batch["attention_mask"]
    return fn


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
    return nn.Sequential(nn.Linear(width_in, width_in), nn.ReLU(), nn.Linear(width_in, dim))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="runs/python_demo")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    os.makedirs(args.out, exist_ok=True)

    reports = [make_pair(i)[1] for i in range(64)]
    vocab = ct.build_wordpiece_vocab([ct.pretraining_text(r) for r in reports], vocab_size=200, min_frequency=1)
    tokenizer = ct.WordPieceTokenizer(vocab, max_length=32)
    dataset = PairDataset(512, tokenizer, args.image_size)
    loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch_size, shuffle=True, drop_last=True,
                                         num_workers=args.workers, collate_fn=collate(tokenizer),
                                         persistent_workers=args.workers > 0)

    image_encoder = torchvision.models.resnet18(num_classes=10)
    image_encoder.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    image_encoder.fc = nn.Identity()  # f_v: the 512-d pooled features
    text_encoder = TextEncoder(tokenizer.vocab_size)
    image_head, text_head = projection(512, 128), projection(128, 128)
    criterion = convirt.InfoNCELoss(temperature=0.1, image_to_text_weight=0.75)
    modules = nn.ModuleList([image_encoder, text_encoder, image_head, text_head])
    optimizer = torch.optim.Adam(modules.parameters(), lr=1e-3, weight_decay=1e-6)

    step = 0
    while step < args.steps:
        for images, ids, mask in loader:
            v = image_head(image_encoder(images))
            u = text_head(text_encoder(ids, mask))
            out = criterion(v, u, return_stats=True)
            optimizer.zero_grad()
            out.loss.backward()
            optimizer.step()
            step += 1
            if step % 10 == 0 or step == 1:
                print(f"step {step:4d}  loss {out.loss.item():.4f}  "
                      f"acc img->txt {out.image_to_text_accuracy.item():.2f}  "
                      f"txt->img {out.text_to_image_accuracy.item():.2f}", flush=True)
            if step >= args.steps:
                break

    path = os.path.join(args.out, "resnet18_1ch.pt")
    torch.save(image_encoder.state_dict(), path)
    tokenizer.save_vocab(os.path.join(args.out, "vocab.txt"))
    print(f"saved the image encoder (a torchvision ResNet-18 state_dict without fc) to {path}")


if __name__ == "__main__":
    main()
