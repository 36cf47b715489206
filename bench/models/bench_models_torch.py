"""The `small` preset's architecture in plain PyTorch (torchvision BasicBlocks, HF-formula BERT layers),
for bench_models' side-by-side step time. Prints "min median min_cpu" in ms for each part (image encoder fwd+bwd,
text encoder fwd+bwd, whole training step), one line each. Args: steps batch threads."""
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models.resnet import BasicBlock


class ResNet18(nn.Module):
    def __init__(self, width=32, in_ch=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        layers, inplanes = [], width
        for i, planes in enumerate([width, 2 * width, 4 * width, 8 * width]):
            stride = 1 if i == 0 else 2
            down = None
            if stride != 1 or inplanes != planes:
                down = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
            layers.append(nn.Sequential(BasicBlock(inplanes, planes, stride, down), BasicBlock(planes, planes)))
            inplanes = planes
        self.layers = nn.Sequential(*layers)
        self.dim = inplanes

    def forward(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        return self.layers(x).mean((2, 3))


class Bert(nn.Module):
    def __init__(self, vocab=2048, h=128, layers=2, heads=2, inter=512, maxpos=64):
        super().__init__()
        self.word, self.pos, self.token_type = nn.Embedding(vocab, h), nn.Embedding(maxpos, h), nn.Embedding(2, h)
        self.ln = nn.LayerNorm(h, eps=1e-12)
        self.drop = nn.Dropout(0.1)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(h, heads, inter, 0.1, activation="gelu", batch_first=True,
                                       layer_norm_eps=1e-12) for _ in range(layers))
        self.dim = h

    def forward(self, ids, mask):
        pos = torch.arange(ids.shape[1])
        x = self.drop(self.ln(self.word(ids) + self.pos(pos) + self.token_type(torch.zeros_like(ids))))
        for layer in self.layers:
            x = layer(x, src_key_padding_mask=mask == 0)
        return x.masked_fill((mask == 0)[:, :, None], float("-inf")).amax(1)


def head(i, o):
    return nn.Sequential(nn.Linear(i, i), nn.ReLU(), nn.Linear(i, o))


def main():
    steps, batch, threads = (int(a) for a in sys.argv[1:4])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    img, txt = ResNet18(), Bert()
    gv, gu = head(img.dim, 128), head(txt.dim, 128)
    params = [p for m in (img, txt, gv, gu) for p in m.parameters()]
    opt = torch.optim.Adam(params, lr=1e-4, weight_decay=1e-6)
    images = torch.randn(batch, 1, 64, 64)
    ids = torch.randint(1, 2048, (batch, 64))
    mask = (torch.arange(64)[None] < torch.randint(8, 65, (batch, 1))).long()

    def step():
        opt.zero_grad()
        v, u = gv(img(images)), gu(txt(ids, mask))
        a, b = F.normalize(v, dim=1), F.normalize(u, dim=1)
        logits = a @ b.T / 0.1
        target = torch.arange(batch)
        loss = 0.75 * F.cross_entropy(logits, target) + 0.25 * F.cross_entropy(logits.T, target)
        loss.backward()
        opt.step()

    for fn in (lambda: img(images).sum().backward(), lambda: txt(ids, mask).sum().backward(), step):
        times, cpu = [], []
        for s in range(steps + 2):
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            c1, t1 = time.process_time(), time.perf_counter()
            if s >= 2:
                times.append((t1 - t0) * 1000)
                cpu.append((c1 - c0) * 1000)
        times.sort()
        print(times[0], times[len(times) // 2], min(cpu), flush=True)


if __name__ == "__main__":
    main()
