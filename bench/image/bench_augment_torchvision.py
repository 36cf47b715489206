"""The torchvision + PIL side of bench_image_augment: the same files, the same ops, 2 worker processes.

Usage: bench_augment_torchvision.py LIST_FILE WORKERS REPEATS. Prints one line per repeat: images/s.
The pipeline is the paper's augmentation as the public reproductions write it with torchvision, with
the blur kernel size chosen per sigma exactly as convirt does (2 * ceil(3 sigma) + 1, at least 3).
"""
import math
import random
import sys
import time

import torch
import torchvision.transforms as T
import torchvision.transforms.functional as F
from PIL import Image


class SigmaBlur:
    def __call__(self, img):
        sigma = random.uniform(0.1, 3.0)
        k = max(3, 2 * math.ceil(3 * sigma) + 1)
        return F.gaussian_blur(img, [k, k], [sigma, sigma])


AUG = T.Compose([
    T.RandomResizedCrop(224, scale=(0.6, 1.0)),
    T.RandomHorizontalFlip(0.5),
    T.RandomAffine(20, translate=(0.1, 0.1), scale=(0.95, 1.05),
                   interpolation=T.InterpolationMode.BILINEAR),
    T.ColorJitter(brightness=(0.6, 1.4), contrast=(0.6, 1.4)),
    SigmaBlur(),
    T.ToTensor(),
])


class Files(torch.utils.data.Dataset):
    def __init__(self, paths):
        self.paths = paths

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        with Image.open(self.paths[i]) as im:
            return AUG(im.convert("L"))


def main():
    paths = [p.strip() for p in open(sys.argv[1]) if p.strip()]
    workers, repeats = int(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(1)
    loader = torch.utils.data.DataLoader(Files(paths), batch_size=None, shuffle=False,
                                         num_workers=workers, persistent_workers=True,
                                         prefetch_factor=4)
    for _ in range(repeats + 1):  # the first pass warms up the workers
        t0 = time.perf_counter()
        n = 0
        for x in loader:
            assert x.shape == (1, 224, 224)
            n += 1
        dt = time.perf_counter() - t0
        print(f"{n / dt:.2f}", flush=True)


if __name__ == "__main__":
    main()
