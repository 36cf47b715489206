"""convirt.data: the readers as torch Datasets, subsets, the loader and the synthetic generator.

Fixtures are written in each dataset's own format (the synthetic generator writes the MIMIC-CXR-JPG,
CheXpert and 8x200 layouts; RSNA, COVIDx, MURA and CSV pairs are written here), then read back.

Run: PYTHONPATH=build/python /usr/bin/python3 -m pytest tests/python/test_data.py
"""
import csv
import math
import pickle

import pytest
import torch
import torch.utils.data

D = pytest.importorskip("convirt.data")
ci = pytest.importorskip("convirt.image")
T = pytest.importorskip("convirt.transforms")

SIZE = 40  # generated image side


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    summary = D.generate_synthetic(out, train_studies=12, validate_studies=4, test_studies=2,
                                   chexpert_train=24, chexpert_valid=8, retrieval_candidates=3,
                                   retrieval_image_queries=1, retrieval_text_queries=2,
                                   image_size=SIZE, seed=3, threads=2)
    return summary


def blob(i, h=SIZE, w=SIZE):
    img = torch.zeros(1, h, w)
    img[:, 4 + i % 8:12 + i % 8, 6:18] = 0.8
    return img


# -- synthetic generator -------------------------------------------------------------------------

def test_generate_summary(synth):
    assert synth["studies"] == 12 + 4 + 2
    assert synth["mimic_images"] >= synth["studies"]
    assert synth["chexpert_images"] == 24 + 8
    assert synth["text_queries"] == 8 * 2
    for key in ("mimic_root", "chexpert_train_csv", "chexpert_valid_csv", "retrieval_dir"):
        assert synth[key].startswith(synth["root"])


def test_synthetic_example_is_seeded():
    a = D.synthetic_example(7, image_size=48)
    b = D.synthetic_example(7, image_size=48)
    c = D.synthetic_example(8, image_size=48)
    assert a["image"].shape == (1, 48, 48) and a["image"].dtype == torch.float32
    assert torch.equal(a["image"], b["image"]) and a["report"] == b["report"]
    assert not torch.equal(a["image"], c["image"])
    assert "FINDINGS" in a["report"] and len(a["labels"]) == 14 and len(a["report_labels"]) == 14
    # A forced finding appears in the ground truth, "only=7" is a normal study.
    names = D.chexpert_all_labels()
    cardio = D.synthetic_example(1, only=1)  # Cardiomegaly
    assert cardio["labels"][names.index("Cardiomegaly")] == 1.0
    normal = D.synthetic_example(1, only=7)
    assert normal["labels"][names.index("No Finding")] == 1.0
    assert D.finding_names()[1] == "Cardiomegaly"
    assert len(set(D.synthetic_text_queries(4, 3, seed=0))) == 3


def test_synthetic_bad_options(tmp_path):
    with pytest.raises(ValueError, match="unknown"):
        D.generate_synthetic(tmp_path, train_studeis=3)
    with pytest.raises(ValueError, match="only"):
        D.synthetic_example(0, only=9)
    with pytest.raises(ValueError, match="image_size"):
        D.synthetic_example(0, image_size=8)


# -- paired readers ------------------------------------------------------------------------------

def test_mimic_reader(synth):
    ds = D.MimicCxrDataset(synth["mimic_root"], split="train", seed=0)
    assert isinstance(ds, torch.utils.data.Dataset)
    assert len(ds) == 12 and ds.labels() is None and ds.label_names == []
    s = ds[0]
    assert set(s) == {"image", "text", "study", "patient", "path", "index"}
    assert s["image"].shape == (3, SIZE, SIZE) and s["image"].dtype == torch.float32
    assert 0.0 <= s["image"].min() and s["image"].max() <= 1.0
    assert s["text"] and s["path"].endswith(".jpg") and s["index"] == 0
    # A fixed seed makes a sample a pure function of (seed, epoch, index); epochs differ.
    assert ds[0]["text"] == s["text"] and torch.equal(ds[0]["image"], s["image"])
    assert ds[-1]["index"] == len(ds) - 1
    gray = D.MimicCxrDataset(synth["mimic_root"], split="validate", channels=1)
    assert len(gray) == 4 and gray[0]["image"].shape[0] == 1
    sentences = {t for _, sents, _, _ in ds.records() for t in sents}
    assert s["text"] in sentences and ds.num_images() >= 12


def test_mimic_errors(synth, tmp_path):
    ds = D.MimicCxrDataset(synth["mimic_root"], split="test")
    with pytest.raises(IndexError, match="index"):
        ds[5]
    with pytest.raises(IndexError):
        ds.get(-7)
    with pytest.raises(TypeError, match="integers"):
        ds["a"]
    with pytest.raises((ValueError, RuntimeError), match="mimic-cxr-2.0.0"):
        D.MimicCxrDataset(tmp_path)
    with pytest.raises(ValueError, match="channels"):
        D.MimicCxrDataset(synth["mimic_root"], channels=2)
    with pytest.raises(TypeError, match="transform"):
        D.MimicCxrDataset(synth["mimic_root"], transform=3)


def write_pairs_csv(root, n, bad=0):
    rows = []
    for i in range(n):
        path = root / f"img{i}.png"
        ci.write_png(path, blob(i))
        rows.append({"image": path.name, "text": f"FINDINGS: Finding number {i} is seen. IMPRESSION: case {i}.",
                     "study": f"s{i}", "patient": f"p{i // 2}"})
    for j in range(bad):
        rows.append({"image": f"missing{j}.png", "text": "FINDINGS: nothing here at all.",
                     "study": f"b{j}", "patient": "pb"})
    with open(root / "pairs.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["image", "text", "study", "patient"])
        w.writeheader()
        w.writerows(rows)
    return root / "pairs.csv"


def test_csv_pairs_reader_with_transforms(tmp_path):
    path = write_pairs_csv(tmp_path, 6)
    ds = D.CsvPairsDataset(path, transform=T.Resize((24, 24)), seed=1)
    assert len(ds) == 6
    s = ds[3]
    assert s["image"].shape == (3, 24, 24)
    assert s["study"] == "s3" and s["patient"] == "p1"
    assert s["text"] in ("Finding number 3 is seen.", "case 3.")  # one sentence per access
    # Any callable (image, seed) -> image works (run with the GIL).
    calls = []

    def halve(img, seed):
        calls.append(seed)
        return img * 0.5

    plain = D.CsvPairsDataset(path, channels=1)
    halved = D.CsvPairsDataset(path, transform=halve, channels=1)
    assert torch.allclose(halved.get(2, 5)["image"], 0.5 * plain.get(2, 5)["image"])
    assert calls
    with pytest.raises(TypeError, match="torch.Tensor"):
        D.CsvPairsDataset(path, transform=lambda img, seed: "nope")[0]
    with pytest.raises(ZeroDivisionError):
        D.CsvPairsDataset(path, transform=lambda img, seed: 1 / 0)[0]


def test_csv_pairs_bad_rows(tmp_path):
    path = write_pairs_csv(tmp_path, 4, bad=1)
    with pytest.raises(RuntimeError, match="missing"):
        D.CsvPairsDataset(path)  # 1 of 5 rows bad > 5%
    ds = D.CsvPairsDataset(path, max_bad_fraction=0.5)
    assert len(ds) == 4
    (skip,) = ds.skipped()
    assert "missing0.png" in skip["path"] and "missing" in skip["reason"]
    with pytest.raises(ValueError, match="image_column|nope"):
        D.CsvPairsDataset(path, image_column="nope")


def test_ragged_and_non_utf8_rows_are_refused_or_skipped(tmp_path):
    path = write_pairs_csv(tmp_path, 4)
    with open(path, "ab") as f:
        f.write(b"img0.png,FINDINGS: short row.\n")  # 2 of 4 fields
        f.write(b"img1.png,FINDINGS: caf\xff seen.,s9,p9\n")  # 0xFF in the text
    with pytest.raises(ValueError, match=r"pairs\.csv line 6: ragged row: expected 4 fields"):
        D.CsvPairsDataset(path)
    ds = D.CsvPairsDataset(path, skip_bad_rows=True, max_bad_fraction=0.5)
    assert len(ds) == 4
    bad = ds.skipped()
    assert [b["path"].rsplit(" ", 1)[-1] for b in bad] == ["6", "7"]
    assert "ragged row" in bad[0]["reason"]
    assert "invalid UTF-8: byte 0xFF" in bad[1]["reason"] and "'text'" in bad[1]["reason"]
    # Skipped rows count against max_bad_fraction (2 of 6 here).
    with pytest.raises(RuntimeError, match="too many bad samples"):
        D.CsvPairsDataset(path, skip_bad_rows=True)
    # The labelled readers take the same keyword.
    (tmp_path / "train.txt").write_bytes(b"1 img0.png normal src\nbroken\n")
    with pytest.raises(ValueError, match="train.txt line 2: ragged line"):
        D.CovidxDataset(tmp_path, "train.txt", images_dir=tmp_path)
    cov = D.CovidxDataset(tmp_path, "train.txt", images_dir=tmp_path, skip_bad_rows=True,
                          max_bad_fraction=-1)
    assert len(cov) == 1 and len(cov.skipped()) == 1


def test_corrupt_image_is_a_runtime_error(tmp_path):
    path = write_pairs_csv(tmp_path, 3)
    (tmp_path / "img1.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    ds = D.CsvPairsDataset(path)
    with pytest.raises(RuntimeError, match="img1.png"):
        ds[1]


def test_paired_from_records(tmp_path):
    for i in range(2):
        ci.write_png(tmp_path / f"v{i}.png", blob(i))
    ds = D.PairedDataset([([tmp_path / "v0.png", tmp_path / "v1.png"], ["a b c.", "d e f."], "s", "p")])
    seen_views = {ds.get(0, seed)["path"] for seed in range(20)}
    seen_text = {ds.get(0, seed)["text"] for seed in range(20)}
    assert len(seen_views) == 2 and len(seen_text) == 2


def test_report_sentences():
    s = D.report_sentences("FINDINGS: Small left effusion. Heart normal.\nIMPRESSION: Effusion.")
    assert "Small left effusion." in s and "Effusion." in s
    with pytest.raises(ValueError, match="empty|tokens"):
        D.report_sentences("FINDINGS: ok.")


# -- labelled readers ----------------------------------------------------------------------------

def test_chexpert_uncertain_policies(synth):
    csv_path = synth["chexpert_train_csv"]
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    labels = D.chexpert_paper_labels()
    raw = torch.tensor([[float(r[c]) if r[c] != "" else math.nan for c in labels] for r in rows])
    zeros = D.ChexpertDataset(csv_path, uncertain="zeros")
    ones = D.ChexpertDataset(csv_path, uncertain="ones")
    ignore = D.ChexpertDataset(csv_path, uncertain="ignore", blank_is_negative=False)
    assert len(zeros) == len(rows) == 24 and zeros.label_names == labels
    unc = raw == -1
    assert unc.any(), "the fixture should hold uncertain labels"
    assert torch.equal(zeros.labels()[unc], torch.zeros(int(unc.sum())))
    assert torch.equal(ones.labels()[unc], torch.ones(int(unc.sum())))
    known = ~(unc | raw.isnan())
    assert torch.equal(ignore.masks(), known.float())
    assert torch.equal(zeros.labels()[known], raw[known])
    s = ignore[0]
    assert set(s) == {"image", "labels", "mask", "study", "patient", "path", "index"}
    assert torch.equal(s["labels"], ignore.labels()[0]) and torch.equal(s["mask"], known[0].float())
    assert s["patient"].startswith("patient") and s["study"].startswith(s["patient"])
    assert D.UNCERTAIN_POLICIES == ("zeros", "ones", "ignore")
    with pytest.raises(ValueError, match="uncertain"):
        D.ChexpertDataset(csv_path, uncertain="maybe")
    with pytest.raises(ValueError, match="Nope"):
        D.ChexpertDataset(csv_path, labels=["Nope"])


def test_rsna_reader(tmp_path):
    ext = ".dcm" if ci.codec_available("dicom") else ".png"
    images = tmp_path / "stage_2_train_images"
    images.mkdir()
    for i in range(4):
        if ext == ".dcm":
            ci.write_dicom(images / f"pat{i}.dcm", (blob(i)[0] * 4000).to(torch.int32), bits_stored=12)
        else:
            ci.write_png(images / f"pat{i}.png", blob(i))
    with open(tmp_path / "stage_2_train_labels.csv", "w") as f:
        f.write("patientId,x,y,width,height,Target\n")
        f.write("pat0,,,,,0\npat1,1,2,3,4,1\npat1,5,6,7,8,1\npat2,,,,,0\npat3,1,1,1,1,1\n")
    ds = D.RsnaDataset(tmp_path, extension=ext, transform=T.Resize((16, 16)))
    assert len(ds) == 4 and ds.label_names == ["Pneumonia"]
    assert ds.labels().flatten().tolist() == [0.0, 1.0, 0.0, 1.0]
    s = ds[1]
    assert s["image"].shape == (3, 16, 16) and s["patient"] == "pat1"


def test_covidx_reader(tmp_path):
    (tmp_path / "train").mkdir()
    classes = ["COVID-19", "pneumonia", "normal"]
    lines = []
    for i in range(6):
        ci.write_png(tmp_path / "train" / f"x{i}.png", blob(i))
        lines.append(f"P{i} x{i}.png {classes[i % 3]} src")
    lines.append("P9 x9.png unknown src")
    (tmp_path / "train.txt").write_text("\n".join(lines) + "\n")
    ds = D.CovidxDataset(tmp_path, "train.txt", max_bad_fraction=0.5)
    assert len(ds) == 6 and ds.label_names == classes
    assert ds.labels().argmax(1).tolist() == [0, 1, 2, 0, 1, 2]
    assert "unknown class" in ds.skipped()[0]["reason"]
    with pytest.raises(RuntimeError, match="unknown class"):
        D.CovidxDataset(tmp_path, "train.txt")


def test_mura_reader(tmp_path):
    base = tmp_path / "MURA-v1.1"
    paths, studies = [], []
    for k, label in enumerate((1, 0)):
        study = f"MURA-v1.1/valid/XR_WRIST/patient0000{k}/study1_{'positive' if label else 'negative'}"
        (tmp_path / study).mkdir(parents=True)
        for v in range(2):
            ci.write_png(tmp_path / study / f"image{v}.png", blob(v))
            paths.append(f"{study}/image{v}.png")
        studies.append(f"{study}/,{label}")
    (base / "valid_image_paths.csv").write_text("\n".join(paths) + "\n")
    (base / "valid_labeled_studies.csv").write_text("\n".join(studies) + "\n")
    ds = D.MuraDataset(tmp_path, "valid")
    assert len(ds) == 4 and ds.labels().flatten().tolist() == [1.0, 1.0, 0.0, 0.0]
    assert ds[0]["patient"] == "XR_WRIST/patient00000"
    assert ds[0]["study"] == "XR_WRIST/patient00000/study1_positive"
    with pytest.raises(ValueError, match="split"):
        D.MuraDataset(tmp_path, "test")


def test_labeled_from_records(tmp_path):
    ci.write_png(tmp_path / "a.png", blob(0))
    ds = D.LabeledDataset([(tmp_path / "a.png", [1, 0], [1, 0], "s", "p")], ["A", "B"])
    s = ds[0]
    assert s["labels"].tolist() == [1.0, 0.0] and s["mask"].tolist() == [1.0, 0.0]
    ds.set_transform(T.Resize((8, 8)))
    assert ds[0]["image"].shape == (3, 8, 8)
    assert pickle.loads(pickle.dumps(ds))[0]["image"].shape == (3, 8, 8)


def test_retrieval_set(synth):
    rs = D.RetrievalSet(synth["retrieval_dir"], image_root=synth["chexpert_root"])
    assert rs.categories == D.retrieval_categories()
    assert len(rs.candidates) == 8 * 3 and len(rs.image_queries) == 8
    assert torch.equal(rs.candidates.labels().sum(1), torch.ones(24))
    q = rs.text_queries
    assert len(q) == 16 and {x["category"] for x in q} == set(range(8))
    assert all(x["category_name"] == rs.categories[x["category"]] and x["text"] for x in q)
    assert rs.candidates[0]["labels"].shape == (8,)
    again = pickle.loads(pickle.dumps(rs.candidates))
    assert torch.equal(again.labels(), rs.candidates.labels())


# -- subsets -------------------------------------------------------------------------------------

def test_label_fraction_subsets(synth):
    ds = D.ChexpertDataset(synth["chexpert_train_csv"])
    idx = D.label_fraction_indices(ds.labels(), 0.25, seed=0)
    assert idx == sorted(idx) and len(set(idx)) == len(idx)
    assert idx == D.label_fraction_indices(ds.labels(), 0.25, seed=0)
    # Every label with positives keeps one.
    lab = ds.labels()
    for c in range(lab.shape[1]):
        if lab[:, c].sum() > 0:
            assert lab[idx, c].sum() > 0
    sub = D.label_fraction_subset(ds, 0.25, seed=0)
    assert len(sub) == len(idx) and sub.indices == idx
    assert sub[0]["path"] == ds[idx[0]]["path"]
    assert len(D.label_fraction_subset(ds, 1.0)) == len(ds)
    with pytest.raises(ValueError, match="fraction"):
        D.label_fraction_indices(ds.labels(), 0.0)
    with pytest.raises(IndexError):
        D.SubsetDataset(ds, [0, 99])
    first, rest = D.stratified_split(ds.labels(), 0.75, seed=1)
    assert sorted(first + rest) == list(range(len(ds))) and not set(first) & set(rest)


def test_label_fraction_subset_needs_labels(synth):
    pairs = D.MimicCxrDataset(synth["mimic_root"], split="test")
    with pytest.raises(ValueError, match="labels"):
        D.label_fraction_subset(pairs, 0.5)


# -- in a torch DataLoader and the C++ loader ----------------------------------------------------

def test_torch_dataloader(synth):
    ds = D.MimicCxrDataset(synth["mimic_root"], split="train", transform=T.paper_augmentation(size=32))
    torch.manual_seed(0)
    loader = torch.utils.data.DataLoader(ds, batch_size=4, shuffle=True, num_workers=2)
    batches = list(loader)
    assert len(batches) == 3
    b = batches[0]
    assert b["image"].shape == (4, 3, 32, 32) and len(b["text"]) == 4 and b["index"].shape == (4,)
    assert sorted(torch.cat([x["index"] for x in batches]).tolist()) == list(range(12))
    lab = D.ChexpertDataset(synth["chexpert_train_csv"], transform=T.Resize((SIZE, SIZE)))
    lb = next(iter(torch.utils.data.DataLoader(lab, batch_size=5)))
    assert lb["labels"].shape == (5, 5) and lb["mask"].shape == (5, 5)


def test_pickles_for_spawn_workers(synth):
    ds = D.MimicCxrDataset(synth["mimic_root"], split="validate", transform=T.Resize((20, 20)), seed=4)
    ds.set_epoch(2)
    again = pickle.loads(pickle.dumps(ds))
    assert again.seed == 4 and again.epoch == 2 and len(again) == len(ds)
    assert torch.equal(again[1]["image"], ds[1]["image"]) and again[1]["text"] == ds[1]["text"]
    with pytest.raises(TypeError, match="pickled"):
        pickle.dumps(D.Dataset(ds.native))


def test_cpp_loader(synth):
    ds = D.MimicCxrDataset(synth["mimic_root"], split="train", transform=T.Resize((24, 24)))
    with D.Loader(ds, batch_size=5, seed=1, workers=2) as loader:
        assert len(loader) == 3
        epoch0 = list(loader)
        assert [b["images"].shape[0] for b in epoch0] == [5, 5, 2]
        assert epoch0[0]["images"].shape == (5, 3, 24, 24) and len(epoch0[0]["texts"]) == 5
        assert sorted(torch.cat([b["indices"] for b in epoch0]).tolist()) == list(range(12))
        assert loader.position == (1, 0)
        loader.set_position(0, 1)
        again = loader.next()
        assert torch.equal(again["images"], epoch0[1]["images"]) and again["texts"] == epoch0[1]["texts"]
    # Independent of the number of workers.
    with D.Loader(ds, batch_size=5, seed=1, workers=0) as serial:
        assert torch.equal(serial.next()["images"], epoch0[0]["images"])
    with pytest.raises(ValueError, match="batch_size"):
        D.Loader(ds, batch_size=0)
    with pytest.raises(TypeError, match="Dataset"):
        D.Loader([1, 2], batch_size=2)


def test_cpp_loader_with_python_transform_closes(tmp_path):
    """Workers inside a Python transform while the loader is dropped must not deadlock."""
    path = write_pairs_csv(tmp_path, 8)
    ds = D.CsvPairsDataset(path, transform=lambda img, seed: img[:, :16, :16].contiguous())
    loader = D.Loader(ds, batch_size=2, workers=2, prefetch=4)
    first = loader.next()
    assert first["images"].shape == (2, 3, 16, 16)
    del loader  # workers may be mid-transform, waiting for the GIL


def test_cpp_loader_skips_bad_samples(tmp_path):
    path = write_pairs_csv(tmp_path, 6)
    (tmp_path / "img2.png").write_bytes(b"not an image")
    ds = D.CsvPairsDataset(path, transform=T.Resize((16, 16)))
    loader = D.Loader(ds, batch_size=6, shuffle=False, workers=0, max_bad_fraction=0.5)
    b = loader.next()
    assert b["images"].shape[0] == 5 and 2 not in b["indices"].tolist()
    (bad,) = loader.bad_samples()
    assert bad["index"] == 2 and "img2.png" in bad["path"]


def test_long_calls_release_the_gil(tmp_path):
    """Python keeps running while the generator renders in C++ (the GIL is released): the longest
    pause of a busy Python loop beside it stays far below the call's duration."""
    import threading
    import time
    done = threading.Event()
    span = []

    def work():
        t0 = time.perf_counter()
        D.generate_synthetic(tmp_path, train_studies=40, validate_studies=1, test_studies=1,
                             chexpert_train=1, chexpert_valid=1, retrieval_candidates=1,
                             retrieval_image_queries=1, retrieval_text_queries=1, image_size=96,
                             threads=1)
        span.append(time.perf_counter() - t0)
        done.set()

    t = threading.Thread(target=work)
    t.start()
    longest, last = 0.0, time.perf_counter()
    while not done.is_set():
        now = time.perf_counter()
        longest, last = max(longest, now - last), now
    t.join()
    assert span[0] > 0.1, "the call should be long enough to tell"
    assert longest < 0.5 * span[0], (longest, span[0])
