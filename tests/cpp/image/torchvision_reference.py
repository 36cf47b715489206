"""Reference outputs for tests/cpp/image/test_transforms.cpp from torchvision 0.14 and PIL.

Usage: torchvision_reference.py DIR. DIR/cases.txt has one case per line:
    <id> <op> <input file> <C> <H> <W> [parameters...]
Inputs are raw little-endian float32 [C, H, W] files (or encoded images for the decode cases); each
output is written as DIR/<id>.out, raw float32, with its shape in DIR/<id>.shape.
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as nnf
import torchvision.transforms.functional as F
from PIL import Image
from torchvision.transforms import InterpolationMode


def load(path, c, h, w):
    return torch.from_numpy(np.fromfile(path, dtype=np.float32).reshape(c, h, w).copy())


def main(root):
    for line in open(os.path.join(root, "cases.txt")):
        parts = line.split()
        if not parts:
            continue
        cid, op, name = parts[0], parts[1], os.path.join(root, parts[2])
        c, h, w = (int(v) for v in parts[3:6])
        p = parts[6:]
        if op == "decode_pil":  # PIL's decode of an encoded file, as float in [0, 1]
            img = Image.open(name)
            img.load()
            arr = np.asarray(img)
            if arr.dtype == np.uint16 or img.mode.startswith("I"):
                out = torch.from_numpy(arr.astype(np.float32) / 65535.0)
            else:
                out = torch.from_numpy(arr.astype(np.float32) / 255.0)
            out = out.unsqueeze(0) if out.dim() == 2 else out.permute(2, 0, 1)
        else:
            x = load(name, c, h, w)
            if op == "resize_aa":
                out = F.resize(x, [int(p[0]), int(p[1])], InterpolationMode.BILINEAR, antialias=True)
            elif op == "resize_noaa":
                out = nnf.interpolate(x[None], size=(int(p[0]), int(p[1])), mode="bilinear",
                                      align_corners=False)[0]
            elif op == "resize_nearest":
                out = nnf.interpolate(x[None], size=(int(p[0]), int(p[1])), mode="nearest")[0]
            elif op == "resize_pil":  # PIL bilinear on the uint8 image
                u8 = (x[0] * 255).round().to(torch.uint8).numpy()
                r = Image.fromarray(u8, mode="L").resize((int(p[1]), int(p[0])), Image.BILINEAR)
                out = torch.from_numpy(np.asarray(r).astype(np.float32) / 255.0)[None]
            elif op == "resized_crop":
                t, l, hh, ww, oh, ow = (int(v) for v in p)
                out = F.resized_crop(x, t, l, hh, ww, [oh, ow], InterpolationMode.BILINEAR,
                                     antialias=True)
            elif op in ("affine_bilinear", "affine_nearest"):
                mode = InterpolationMode.BILINEAR if op == "affine_bilinear" else InterpolationMode.NEAREST
                out = F.affine(x, angle=float(p[0]), translate=[int(p[1]), int(p[2])],
                               scale=float(p[3]), shear=[0.0, 0.0], interpolation=mode)
            elif op == "brightness":
                out = F.adjust_brightness(x, float(p[0]))
            elif op == "contrast":
                out = F.adjust_contrast(x, float(p[0]))
            elif op == "blur":
                k = int(p[1])
                out = F.gaussian_blur(x, [k, k], [float(p[0]), float(p[0])])
            elif op == "hflip":
                out = F.hflip(x)
            else:
                raise ValueError("unknown op " + op)
        out = out.contiguous().to(torch.float32)
        out.numpy().tofile(os.path.join(root, cid + ".out"))
        with open(os.path.join(root, cid + ".shape"), "w") as f:
            f.write(" ".join(str(s) for s in out.shape))


if __name__ == "__main__":
    main(sys.argv[1])
