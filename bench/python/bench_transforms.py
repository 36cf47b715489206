"""Side-by-side: the paper's augmentation through convirt.transforms vs torchvision's tensor transforms.

Both sides start from the same decoded float tensors [1, 256, 256] (no file decoding: that is
bench/image's job) and run the same five steps (RandomResizedCrop(224, scale=(0.6, 1)), flip,
RandomAffine(20, (0.1, 0.1), (0.95, 1.05), BILINEAR), ColorJitter brightness/contrast (0.6, 1.4),
GaussianBlur with the sigma-dependent kernel size). Sides alternate per repeat so that load from
other processes hits both alike; the ratio is what to quote.

    PYTHONPATH=build/python /usr/bin/python3 bench/python/bench_transforms.py --images 64 --repeats 5
"""
import argparse
import math
import platform
import statistics
import time

import torch
import torchvision.transforms as TV
import torchvision.transforms.functional as TF

import convirt.transforms as T


class TorchvisionBlur:
    """GaussianBlur with the kernel size convirt derives from sigma (torchvision fixes one size)."""

    def __call__(self, x):
        sigma = float(torch.empty(1).uniform_(0.1, 3.0))
        k = max(3, 2 * math.ceil(3 * sigma) + 1)
        return TF.gaussian_blur(x, [k, k], [sigma, sigma])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    images = [torch.rand(1, 32, 32) for _ in range(args.images)]
    images = [torch.nn.functional.interpolate(x[None], size=(256, 256), mode="bilinear")[0] for x in images]

    ours = T.paper_augmentation(size=224)
    theirs = TV.Compose([
        TV.RandomResizedCrop(224, scale=(0.6, 1.0), antialias=True),
        TV.RandomHorizontalFlip(),
        TV.RandomAffine(20, (0.1, 0.1), (0.95, 1.05), interpolation=TV.InterpolationMode.BILINEAR),
        TV.ColorJitter(brightness=(0.6, 1.4), contrast=(0.6, 1.4)),
        TorchvisionBlur(),
    ])
    batch = torch.stack(images)

    def per_image(fn):
        t0 = time.perf_counter()
        for x in images:
            fn(x)
        return args.images / (time.perf_counter() - t0)

    def batched():
        t0 = time.perf_counter()
        ours(batch, seed=1)
        return args.images / (time.perf_counter() - t0)

    rows = {"convirt per image": [], "convirt batch": [], "torchvision per image": []}
    per_image(ours), per_image(theirs)  # warm-up
    for r in range(args.repeats):
        rows["convirt per image"].append(per_image(lambda x: ours(x, seed=r)))
        rows["torchvision per image"].append(per_image(theirs))
        rows["convirt batch"].append(batched())
    print(f"machine: {platform.machine()} {platform.processor() or ''}, torch {torch.__version__}, "
          f"threads {args.threads}, {args.images} images [1, 256, 256] -> [1, 224, 224], {args.repeats} repeats")
    print(f"{'side':<24}{'median images/s':>18}")
    med = {k: statistics.median(v) for k, v in rows.items()}
    for k, v in med.items():
        print(f"{k:<24}{v:>18.1f}")
    base = med["torchvision per image"]
    print(f"ratio convirt/torchvision: per image {med['convirt per image'] / base:.2f}x, "
          f"batch {med['convirt batch'] / base:.2f}x")


if __name__ == "__main__":
    main()
