"""convirt.image and convirt.transforms against torchvision's functional ops and PIL.

Run: PYTHONPATH=build/python /usr/bin/python3 -m pytest tests/python/test_image.py
"""
import io
import math
import pickle
import threading

import pytest
import torch

ci = pytest.importorskip("convirt.image")
T = pytest.importorskip("convirt.transforms")
from convirt import _C  # noqa: E402

try:
    import torchvision.transforms.functional as TF
    from torchvision.transforms import InterpolationMode
except ImportError:  # the comparisons skip, the rest runs
    TF = None
    InterpolationMode = None

needs_tv = pytest.mark.skipif(TF is None, reason="torchvision is not installed")


def smooth_image(c=1, h=37, w=53, seed=0):
    """A smooth random image (random low-frequency field), like a radiograph and unlike pure noise."""
    g = torch.Generator().manual_seed(seed)
    small = torch.rand(1, c, max(2, h // 6), max(2, w // 6), generator=g)
    x = torch.nn.functional.interpolate(small, size=(h, w), mode="bicubic", align_corners=False)
    x = x + 0.05 * torch.rand(1, c, h, w, generator=g)
    return x.clamp(0, 1)[0].contiguous()


def close(a, b, atol=1e-5):
    assert a.shape == b.shape, (a.shape, b.shape)
    diff = (a.float() - b.float()).abs().max().item() if a.numel() else 0.0
    assert diff <= atol, f"max abs diff {diff} > {atol}"


# ------------------------------------------------------------------------------------------------
# Functional ops vs torchvision

@needs_tv
@pytest.mark.parametrize("size", [(20, 30), (64, 90), (37, 53), (11, 100)])
@pytest.mark.parametrize("antialias", [True, False])
def test_resize_matches_torchvision(size, antialias):
    x = smooth_image(3, 37, 53)
    ours = ci.resize(x, size, antialias=antialias)
    ref = TF.resize(x, list(size), InterpolationMode.BILINEAR, antialias=antialias)
    close(ours, ref, 2e-5)


@needs_tv
def test_resize_int_is_smaller_edge_and_nearest():
    x = smooth_image(1, 40, 70)
    assert ci.resize(x, 20).shape == TF.resize(x, 20, antialias=True).shape == (1, 20, 35)
    close(ci.resize(x, (17, 29), interpolation=InterpolationMode.NEAREST),
          TF.resize(x, [17, 29], InterpolationMode.NEAREST), 0)


@needs_tv
def test_resized_crop_matches_torchvision():
    x = smooth_image(1, 64, 80)
    ours = ci.resized_crop(x, 5, 7, 40, 50, (32, 32))
    ref = TF.resized_crop(x, 5, 7, 40, 50, [32, 32], InterpolationMode.BILINEAR, antialias=True)
    close(ours, ref, 2e-5)


@needs_tv
def test_hflip_brightness_contrast_normalize_match_torchvision():
    x = smooth_image(3, 21, 34, seed=3)
    close(ci.hflip(x), TF.hflip(x), 0)
    for f in (0.6, 1.0, 1.37):
        close(ci.adjust_brightness(x, f), TF.adjust_brightness(x, f), 1e-6)
        close(ci.adjust_contrast(x, f), TF.adjust_contrast(x, f), 1e-5)
    g = smooth_image(1, 21, 34, seed=4)
    close(ci.adjust_contrast(g, 0.7), TF.adjust_contrast(g, 0.7), 1e-5)
    close(ci.normalize(x, [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]),
          TF.normalize(x, [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]), 1e-5)


@needs_tv
@pytest.mark.parametrize("angle,translate,scale", [(0.0, (0, 0), 1.0), (17.5, (3, -2), 1.04),
                                                   (-20.0, (-5, 4), 0.95), (90.0, (0, 0), 1.0)])
def test_affine_matches_torchvision(angle, translate, scale):
    x = smooth_image(1, 48, 40, seed=5)
    ours = ci.affine(x, angle, translate, scale)
    ref = TF.affine(x, angle, list(translate), scale, [0.0, 0.0], InterpolationMode.BILINEAR)
    close(ours, ref, 1e-4)
    ours_n = ci.affine(x, angle, translate, scale, interpolation="nearest")
    ref_n = TF.affine(x, angle, list(translate), scale, [0.0, 0.0], InterpolationMode.NEAREST)
    # Nearest sampling may round a sample exactly on a pixel boundary differently: allow a few.
    assert (ours_n - ref_n).abs().gt(1e-6).float().mean().item() < 0.01


@needs_tv
@pytest.mark.parametrize("sigma", [0.1, 0.8, 2.3, 3.0])
def test_gaussian_blur_matches_torchvision(sigma):
    x = smooth_image(1, 40, 45, seed=6)
    k = ci.gaussian_kernel_size(sigma)
    assert k == max(3, 2 * math.ceil(3 * sigma) + 1)
    close(ci.gaussian_blur(x, sigma), TF.gaussian_blur(x, [k, k], [sigma, sigma]), 1e-5)
    close(ci.gaussian_blur(x, sigma, 5), TF.gaussian_blur(x, [5, 5], [sigma, sigma]), 1e-5)


@needs_tv
def test_pad_to_square_and_eval_preprocess():
    x = smooth_image(1, 30, 45)
    padded = ci.pad_to_square(x)
    ref = TF.pad(x, [0, 7, 0, 8])  # left, top, right, bottom: the odd pixel goes to the bottom
    close(padded, ref, 0)
    close(ci.eval_preprocess(x, 32), TF.resize(ref, [32, 32], InterpolationMode.BILINEAR, antialias=True), 2e-5)
    assert ci.resize_longer_side(x, 256).shape == (1, round(30 * 256 / 45), 256)
    close(ci.pretrain_preprocess(x, 60), ci.resize_longer_side(x, 60), 0)


def test_uint8_batch_and_noncontiguous_inputs():
    x = smooth_image(1, 32, 24)
    u8 = (x * 255).round().to(torch.uint8)
    close(ci.resize(u8, (16, 12)), ci.resize(u8.float() / 255, (16, 12)), 1e-6)
    batch = torch.stack([x, x.flip(-1)])
    out = ci.gaussian_blur(batch, 1.2)
    close(out[1], ci.gaussian_blur(x.flip(-1), 1.2), 0)
    nc = smooth_image(1, 24, 32).transpose(1, 2)  # [1, 32, 24], not contiguous
    assert not nc.is_contiguous()
    close(ci.affine(nc, 10, (1, 2), 1.0), ci.affine(nc.contiguous(), 10, (1, 2), 1.0), 0)
    assert ci.hflip(torch.rand(2, 3, 5, 7, dtype=torch.float64)).dtype == torch.float32


def test_functional_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"image must be \[C, H, W\] or \[B, C, H, W\], got \[4, 4\]"):
        ci.hflip(torch.rand(4, 4))
    with pytest.raises(TypeError, match="float or uint8"):
        ci.hflip(torch.zeros(1, 4, 4, dtype=torch.int32))
    with pytest.raises(ValueError, match="sigma must be > 0, got -1"):
        ci.gaussian_blur(torch.rand(1, 8, 8), -1.0)
    with pytest.raises(ValueError, match="interpolation must be 'bilinear' or 'nearest', got 'cubic'"):
        ci.resize(torch.rand(1, 8, 8), (4, 4), interpolation="cubic")
    with pytest.raises(ValueError, match="size must be"):
        ci.resize(torch.rand(1, 8, 8), (4, 4, 4))
    with pytest.raises(ValueError, match="must be > 0"):
        ci.resize(torch.rand(1, 8, 8), (0, 4))


# ------------------------------------------------------------------------------------------------
# Decoding and encoding

def test_png_jpeg_roundtrip_and_bytes(tmp_path):
    x = smooth_image(1, 20, 30)
    p = tmp_path / "a.png"
    ci.write_png(p, x, 16)
    y = ci.read_image(p)
    close(y, x, 1.0 / 65535)
    assert ci.image_info(p) == {"format": "png", "width": 30, "height": 20, "channels": 1, "bit_depth": 16}
    data = ci.encode_png(x)
    assert isinstance(data, bytes) and ci.detect_format(data) == "png"
    close(ci.decode_image(data), (x * 255).round() / 255, 1e-6)
    close(ci.decode_image(torch.frombuffer(bytearray(data), dtype=torch.uint8)), ci.decode_image(data), 0)
    u8 = ci.decode_image(data, dtype=torch.uint8)
    assert u8.dtype == torch.uint8 and u8.shape == (1, 20, 30)
    rgb = smooth_image(3, 16, 16)
    jpg = ci.encode_jpeg(rgb, quality=95)
    assert ci.detect_format(jpg) == "jpeg"
    dec = ci.decode_image(jpg)
    assert dec.shape == (3, 16, 16) and (dec - rgb).abs().mean() < 0.03
    assert ci.decode_image(jpg, channels=1).shape == (1, 16, 16)
    assert ci.detect_format(b"hello") == "unknown"
    assert ci.codec_available("jpeg") and ci.codec_available("png")


def test_png_decode_matches_pil(tmp_path):
    PIL = pytest.importorskip("PIL.Image")
    rgb = (smooth_image(3, 13, 17) * 255).round().to(torch.uint8)
    p = tmp_path / "rgb.png"
    ci.write_png(str(p), rgb)
    with PIL.open(p) as im:
        ref = torch.tensor(list(im.convert("L").getdata()), dtype=torch.uint8).view(13, 17)
    ours = ci.read_image(p, channels=1, dtype=torch.uint8)[0]
    assert (ours.int() - ref.int()).abs().max().item() <= 1


def test_dicom_roundtrip(tmp_path):
    if not ci.codec_available("dicom"):
        pytest.skip("built without DCMTK")
    pixels = torch.arange(0, 4096, 16, dtype=torch.int32).view(16, 16)
    p = tmp_path / "a.dcm"
    ci.write_dicom(p, pixels, bits_stored=12, view_position="PA")
    assert ci.image_info(p)["format"] == "dicom"
    x = ci.read_image(p, dicom_intensity="bit_depth")
    close(x[0], pixels.float() / 4095, 1e-6)
    mono1 = tmp_path / "m1.dcm"
    ci.write_dicom(mono1, pixels, bits_stored=12, photometric="MONOCHROME1")
    close(ci.read_image(mono1, dicom_intensity="bit_depth")[0], 1 - pixels.float() / 4095, 1e-6)


def test_decode_errors(tmp_path):
    missing = tmp_path / "nope.jpg"
    with pytest.raises((ValueError, RuntimeError), match="nope.jpg"):
        ci.read_image(missing)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image at all")
    with pytest.raises((ValueError, RuntimeError), match="unsupported format"):
        ci.read_image(bad)
    truncated = ci.encode_png(smooth_image(1, 32, 32))[:60]
    with pytest.raises((ValueError, RuntimeError)):
        ci.decode_image(truncated)
    with pytest.raises(TypeError, match="dtype must be torch.float32 or torch.uint8"):
        ci.read_image(bad, dtype=torch.float64)
    with pytest.raises(TypeError, match="data must be"):
        ci.decode_image("a string")
    with pytest.raises(TypeError, match="path must be"):
        ci.read_image(42)
    with pytest.raises(ValueError, match="channels must be 0"):
        ci.read_image(bad, channels=2)
    with pytest.raises(ValueError, match="dicom_intensity"):
        ci.read_image(bad, dicom_intensity="bright")


# ------------------------------------------------------------------------------------------------
# Transforms

def test_seeded_transform_is_deterministic_and_matches_cpp_pipeline():
    x = smooth_image(1, 64, 56)
    aug = T.paper_augmentation(size=32)
    a, b = aug(x, seed=7), aug(x, seed=7)
    assert a.shape == (1, 32, 32) and a.dtype == torch.float32
    close(a, b, 0)
    assert (aug(x, seed=8) - a).abs().max() > 1e-3
    native = _C.image.paper_augmentation(size=32)
    close(native(x, 7), a, 0)
    assert repr(aug).startswith("Compose(RandomResizedCrop(")


def test_rng_stream_and_state():
    x = smooth_image(1, 40, 40)
    aug = T.paper_augmentation(size=24)
    r1 = T.Rng(3)
    first = aug(x, rng=r1)
    state = r1.state()
    second = aug(x, rng=r1)
    r2 = T.Rng(0)
    r2.set_state(state)
    close(aug(x, rng=r2), second, 0)
    close(aug(x, rng=T.Rng(3)), first, 0)
    r3 = pickle.loads(pickle.dumps(r1))
    assert r3.state() == r1.state()


def test_torch_generator_seeding():
    x = smooth_image(1, 40, 40)
    aug = T.paper_augmentation(size=24)
    torch.manual_seed(11)
    a = aug(x)
    torch.manual_seed(11)
    close(aug(x), a, 0)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    close(aug(x, generator=g1), aug(x, generator=g2), 0)


def test_batch_equals_per_image_seeds():
    x = torch.stack([smooth_image(1, 30, 30, seed=s) for s in range(3)])
    aug = T.paper_augmentation(size=16)
    out = aug(x, seed=42)
    seeds = T.Rng(42)
    for b in range(3):
        close(out[b], aug(x[b], rng=T.Rng(seeds.next_u64())), 0)


def test_transforms_agree_with_functional_ops():
    x = smooth_image(1, 50, 60)
    crop = T.RandomResizedCrop(24, scale=(0.3, 0.9))
    top, left, h, w = crop.sample(50, 60, T.Rng(9))
    close(crop(x, seed=9), ci.resized_crop(x, top, left, h, w, (24, 24)), 0)
    aff = T.RandomAffine(15, (0.1, 0.2), (0.9, 1.1))
    angle, (tx, ty), scale = aff.sample(50, 60, T.Rng(4))
    assert -15 <= angle <= 15 and 0.9 <= scale <= 1.1 and abs(tx) <= 6 and abs(ty) <= 10
    close(aff(x, seed=4), ci.affine(x, angle, (tx, ty), scale), 0)
    close(T.RandomHorizontalFlip(1.0)(x, seed=1), ci.hflip(x), 0)
    close(T.RandomHorizontalFlip(0.0)(x, seed=1), x, 0)
    close(T.ColorJitter((1.3, 1.3), (1.0, 1.0))(x, seed=2), ci.adjust_brightness(x, 1.3), 1e-6)
    close(T.GaussianBlur((1.5, 1.5))(x, seed=0), ci.gaussian_blur(x, 1.5), 0)
    close(T.Resize((20, 30))(x), ci.resize(x, (20, 30)), 0)
    assert T.Resize((20, 30)).native is not None
    close(T.Resize(25)(x), ci.resize(x, 25), 0)  # int: the smaller edge, as torchvision
    assert T.Resize(25)(x).shape == (1, 25, 30) and T.Resize(25).native is None
    close(T.Normalize([0.5], [0.25])(x), (x - 0.5) / 0.25, 1e-6)
    close(T.eval_transform(32)(x), ci.eval_preprocess(x, 32), 0)
    close(T.PadToSquare()(x), ci.pad_to_square(x), 0)
    close(T.ResizeLongerSide(30)(x), ci.resize_longer_side(x, 30), 0)


def test_random_parameters_cover_their_ranges():
    crop = T.RandomResizedCrop(16)
    areas = []
    rng = T.Rng(0)
    for _ in range(300):
        _, _, h, w = crop.sample(100, 100, rng)
        areas.append(h * w / 1e4)
    assert 0.59 <= min(areas) < 0.65 and 0.95 < max(areas) <= 1.0
    flips = [bool((T.RandomHorizontalFlip()(torch.arange(4.0).view(1, 1, 4), seed=s)[0, 0, 0] == 3).item())
             for s in range(400)]
    assert 0.4 < sum(flips) / len(flips) < 0.6


def test_compose_with_python_callables():
    x = smooth_image(1, 40, 40)
    mixed = T.Compose([T.RandomHorizontalFlip(), lambda t: t * 0.5, T.GaussianBlur((1.0, 2.0))])
    assert mixed.native is None and len(mixed) == 3
    a = mixed(x, seed=3)
    close(a, mixed(x, seed=3), 0)
    rng = T.Rng(3)
    ref = T.GaussianBlur((1.0, 2.0))(T.RandomHorizontalFlip()(x, rng=rng) * 0.5, rng=rng)
    close(a, ref, 0)
    with pytest.raises(TypeError, match="not callable"):
        T.Compose([T.RandomHorizontalFlip(), 3])


def test_transform_errors():
    aug = T.RandomHorizontalFlip()
    with pytest.raises(TypeError, match="torch.Tensor"):
        aug([[1.0]])
    with pytest.raises(ValueError, match=r"seed must be in \[0, 2\*\*64\)"):
        aug(torch.rand(1, 4, 4), seed=-1)
    with pytest.raises(TypeError, match="seed must be an int"):
        aug(torch.rand(1, 4, 4), seed=1.5)
    with pytest.raises(ValueError, match="seed or rng"):
        aug(torch.rand(1, 4, 4), seed=1, rng=T.Rng(1))
    with pytest.raises(ValueError, match="RandomHorizontalFlip: p"):
        T.RandomHorizontalFlip(1.5)
    with pytest.raises(ValueError, match="scale"):
        T.RandomResizedCrop(16, scale=(0.0, 1.5))
    with pytest.raises(TypeError, match="pair"):
        T.ColorJitter(brightness=0.5)
    with pytest.raises(ValueError, match=r"image must be \[C, H, W\] or \[B, C, H, W\], got \[5\]"):
        aug(torch.rand(5))


def test_pickle_roundtrip():
    aug = T.paper_augmentation(size=20, degrees=5)
    clone = pickle.loads(pickle.dumps(aug))
    x = smooth_image(1, 30, 30)
    close(clone(x, seed=5), aug(x, seed=5), 0)
    assert repr(clone) == repr(aug)


class _AugDataset(torch.utils.data.Dataset):
    def __init__(self, n=8):
        self.images = [smooth_image(1, 36, 36, seed=i) for i in range(n)]
        self.aug = T.paper_augmentation(size=16)

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.aug(self.images[i])


def _run_loader(workers, context=None):
    torch.manual_seed(123)
    loader = torch.utils.data.DataLoader(_AugDataset(), batch_size=4, num_workers=workers,
                                         multiprocessing_context=context)
    return torch.cat(list(loader))


def test_dataloader_workers_reproducible():
    a = _run_loader(2)
    b = _run_loader(2)
    close(a, b, 0)
    assert a.shape == (8, 1, 16, 16)
    # Each sample draws its own parameters: no two views of different images are identical crops
    # of the same window (a worker-seeding bug would repeat the stream).
    first_pixels = {round(v, 6) for v in a[:, 0, 0, 0].tolist()}
    assert len(first_pixels) > 4


def test_dataloader_spawn_worker():
    out = _run_loader(1, "spawn")
    assert out.shape == (8, 1, 16, 16) and torch.isfinite(out).all()


def test_threads_run_concurrently_with_same_results():
    x = torch.stack([smooth_image(1, 64, 64, seed=s) for s in range(4)])
    aug = T.paper_augmentation(size=32)
    expected = [aug(x, seed=s) for s in range(8)]
    results = [None] * 8

    def work(s):
        results[s] = aug(x, seed=s)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in range(8):
        close(results[s], expected[s], 0)
