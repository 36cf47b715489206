"""A ConVIRT-pretrained image encoder used from torchvision through a state_dict.

The state_dict has torchvision's key names (``conv1.weight``, ``layer1.0.bn1.running_mean``, ...),
so ``torchvision.models.resnetXX().load_state_dict`` takes it as is; only ``fc`` is new. Two sources:

* train_loop.py in this folder saves its ResNet-18 encoder that way;
* a convirt checkpoint's ResNet-50 exported to a torchvision state_dict (``convirt.models`` /
  the ``convirt export`` command) loads into ``torchvision.models.resnet50()`` the same way.

The example then runs the paper's linear evaluation protocol on toy data: the encoder is frozen,
only a new linear layer on the pooled features is trained, with convirt's evaluation preprocessing
(zero-pad to square, resize) as the transform.

    PYTHONPATH=build/python /usr/bin/python3 examples/python/use_with_torchvision.py \
        --state-dict /tmp/convirt_demo/resnet18_1ch.pt --arch resnet18 --in-channels 1
"""
import argparse
import random

import torch
import torch.nn as nn
import torchvision

import convirt.transforms as T


def make_pair(index: int, size: int = 72):
    """A toy grey image with a bright blob on the left or right, small or large, and a report that
    describes it; the probe below learns the blob's size."""
    rng = random.Random(index)
    side, big = rng.randrange(2), rng.randrange(2)
    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                            indexing="ij")
    cx = size * (0.3 if side == 0 else 0.7) + rng.uniform(-4, 4)
    cy = size * 0.5 + rng.uniform(-8, 8)
    r = size * (0.08 if big == 0 else 0.18)
    image = 0.25 + 0.6 * torch.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))
    image = (image + 0.05 * torch.randn(size, size, generator=torch.Generator().manual_seed(index))).clamp(0, 1)
    report = f"There is a {['small', 'large'][big]} opacity in the {['left', 'right'][side]} lung."
    return image[None], report


def load_encoder(path: str, arch: str, in_channels: int) -> nn.Module:
    net = getattr(torchvision.models, arch)()
    if in_channels != 3:  # a gray-image encoder has a 1-channel stem
        net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    state = torch.load(path, map_location="cpu")
    missing, unexpected = net.load_state_dict(state, strict=False)
    # Everything but the classifier must come from the checkpoint.
    if unexpected or any(not k.startswith("fc.") for k in missing):
        raise SystemExit(f"{path} is not a torchvision {arch} state_dict: missing {missing}, "
                         f"unexpected {unexpected}")
    print(f"loaded {len(state)} tensors into torchvision.models.{arch}; new: {missing}")
    return net


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--state-dict", required=True)
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--in-channels", type=int, default=1)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    torch.manual_seed(0)

    net = load_encoder(args.state_dict, args.arch, args.in_channels)
    features = net.fc.in_features
    net.fc = nn.Identity()
    net.eval().requires_grad_(False)

    prep = T.eval_transform(args.image_size)
    def split(lo, hi):
        pairs = [make_pair(i) for i in range(lo, hi)]
        x = torch.stack([prep(img) for img, _ in pairs])
        y = torch.tensor([1.0 if "large" in report else 0.0 for _, report in pairs])
        with torch.no_grad():
            return net(x), y

    train_x, train_y = split(10_000, 10_200)
    test_x, test_y = split(20_000, 20_200)
    head = nn.Linear(features, 1)
    opt = torch.optim.Adam(head.parameters(), lr=1e-2)
    for _ in range(args.epochs):
        loss = nn.functional.binary_cross_entropy_with_logits(head(train_x)[:, 0], train_y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        acc = ((head(test_x)[:, 0] > 0).float() == test_y).float().mean().item()
    print(f"linear probe on the frozen encoder: test accuracy {acc:.3f} ({len(test_y)} images)")


if __name__ == "__main__":
    main()
