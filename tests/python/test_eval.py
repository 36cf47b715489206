"""convirt.eval against scikit-learn / NumPy references (run with /usr/bin/python3 -m pytest,
PYTHONPATH=build/python)."""
import json

import numpy as np
import pytest
import torch

ev = pytest.importorskip("convirt.eval")
sk = pytest.importorskip("sklearn.metrics")


def test_roc_auc_matches_sklearn_with_ties():
    g = torch.Generator().manual_seed(0)
    for trial in range(20):
        n = 5 + trial * 13
        scores = (torch.rand(n, generator=g) * 6).round() / 6  # many ties
        targets = (torch.rand(n, generator=g) < 0.4).long()
        targets[0], targets[1] = 0, 1
        assert ev.roc_auc(scores, targets) == pytest.approx(
            sk.roc_auc_score(targets.numpy(), scores.numpy()), abs=1e-12)


def test_multilabel_mask_and_accuracy_match_sklearn():
    g = torch.Generator().manual_seed(1)
    s = torch.rand(300, 5, generator=g, dtype=torch.float64).mul(10).round()
    y = (torch.rand(300, 5, generator=g) < 0.3).double()
    mask = torch.rand(300, 5, generator=g) > 0.2
    r = ev.multilabel_roc_auc(s, y.masked_fill(~mask, -1), mask)
    ref = [sk.roc_auc_score(y[mask[:, l], l], s[mask[:, l], l]) for l in range(5)]
    assert r["per_label"] == pytest.approx(ref, abs=1e-12)
    assert r["mean"] == pytest.approx(np.mean(ref), abs=1e-12)
    logits = torch.randn(300, 4, generator=g)
    cls = torch.randint(0, 4, (300,), generator=g)
    assert ev.accuracy(logits, cls) == pytest.approx(
        sk.accuracy_score(cls.numpy(), logits.argmax(1).numpy()))


def test_errors_become_python_exceptions():
    with pytest.raises(ValueError, match="only one class"):
        ev.roc_auc(torch.tensor([0.1, 0.2]), torch.tensor([1, 1]))
    with pytest.raises(TypeError):
        ev.accuracy(torch.rand(3, 2), torch.tensor([0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="k must be in"):
        ev.precision_at_k(torch.rand(2, 4), torch.tensor([0, 1]), torch.tensor([0, 1, 0, 1]), 9)


def test_retrieval_precision_matches_numpy():
    g = torch.Generator().manual_seed(2)
    q, c = torch.randn(16, 8, generator=g), torch.randn(80, 8, generator=g)
    ql, cl = torch.randint(0, 8, (16,), generator=g), torch.arange(80) % 8
    r = ev.retrieval_precision(q, ql, c, cl, ks=[5, 10, 50])
    qn = q / q.norm(dim=1, keepdim=True)
    cn = c / c.norm(dim=1, keepdim=True)
    order = np.argsort(-(qn @ cn.T).numpy(), axis=1, kind="stable")
    for k in (5, 10, 50):
        ref = (cl.numpy()[order[:, :k]] == ql.numpy()[:, None]).mean()
        assert r["precision"][k] == pytest.approx(ref, abs=1e-6)


def test_tsne_separates_clusters_like_sklearn():
    from sklearn.manifold import TSNE
    g = torch.Generator().manual_seed(3)
    labels = torch.arange(3).repeat_interleave(40)
    x = (torch.randn(3, 16, generator=g) * 6)[labels] + torch.randn(120, 16, generator=g)
    emb, kl = ev.tsne(x, perplexity=15, max_iterations=500, seed=1)
    assert emb.shape == (120, 2)
    ours = ev.knn_label_agreement(emb, labels, 5)
    ref = TSNE(perplexity=15, method="exact", init="random", random_state=0).fit_transform(x.numpy())
    theirs = ev.knn_label_agreement(torch.from_numpy(ref), labels, 5)
    assert ours >= theirs - 0.02 and ours > 0.95
    assert 0 < kl < 1.5


def test_linear_probe_and_results_json(tmp_path):
    g = torch.Generator().manual_seed(4)
    w = torch.randn(12, 2, generator=g)

    def split(n):
        x = torch.randn(n, 12, generator=g)
        return x, (x @ w > 0.3).float()

    r = ev.linear_probe(split(300), split(100), split(100), learning_rate=1e-2, max_epochs=15)
    assert r["test_metric"] > 0.9 and r["metric"] == "mean_auc"
    assert r["test_probabilities"].shape == (100, 2)
    res = ev.Results()
    res.set_classification("linear", "ConVIRT", "RSNA", ev.fraction_key(0.01), 100 * r["test_metric"])
    res.set_retrieval("ConVIRT", "text_image", 10, 57.5)
    path = str(tmp_path / "results.json")
    res.save(path)
    data = json.load(open(path))
    assert data["linear"]["ConVIRT"]["RSNA"]["1"] == pytest.approx(100 * r["test_metric"])
    assert data["retrieval"]["ConVIRT"]["text_image"]["10"] == 57.5
    assert "| ConVIRT |" in ev.Results.load(path).format_classification_table("linear")


def test_scatter_svg(tmp_path):
    pts, lab = torch.randn(10, 2), torch.arange(10) % 2
    path = str(tmp_path / "fig.svg")
    ev.write_scatter_svg(path, [("ConVIRT", pts, lab)], title="t", category_names=["a", "b"])
    text = open(path).read()
    assert text.count("<circle") == 12 and ">a</text>" in text


def test_line_chart_svg_parses_and_holds_its_data(tmp_path):
    import xml.etree.ElementTree as ET
    panels = [{"title": "CheXpert", "x_label": "labels (%)", "y_label": "AUC (%)", "log_x": True,
               "series": [{"name": "ConVIRT", "x": [1, 10, 100], "y": [80.5, 88.25, 91.0],
                           "err": [1.5, 0.75, 0.25]},
                          {"name": "Random & co", "x": [1, 10, 100], "y": [55.0, 60.0, 70.0]}]},
              {"title": "loss", "series": [{"name": "train", "x": [0, 1, 2], "y": [3.0, 2.0, 1.5]}]}]
    path = tmp_path / "fig.svg"
    ev.write_line_chart_svg(str(path), panels, title="Label efficiency")
    root = ET.parse(path).getroot()  # well-formed XML
    ns = {"s": "http://www.w3.org/2000/svg"}
    got = {}
    for g in root.iter("{http://www.w3.org/2000/svg}g"):
        if g.get("class") == "series":
            got.setdefault(g.get("data-name"), []).append(
                [(float(c.get("data-x")), float(c.get("data-y"))) for c in g.findall("s:circle", ns)])
    assert got["ConVIRT"] == [[(1, 80.5), (10, 88.25), (100, 91.0)]]
    assert got["Random & co"] == [[(1, 55.0), (10, 60.0), (100, 70.0)]]
    assert got["train"] == [[(0, 3.0), (1, 2.0), (2, 1.5)]]
    with pytest.raises(ValueError, match="x and y must have the same length"):
        ev.render_line_chart_svg([{"series": [{"name": "a", "x": [1, 2], "y": [1]}]}])


# -- evaluate(config): the paper's protocols from a checkpoint -----------------------------------

@pytest.fixture(scope="module")
def eval_fixture(tmp_path_factory):
    data = pytest.importorskip("convirt.data")
    models = pytest.importorskip("convirt.models")
    text = pytest.importorskip("convirt.text")
    root = tmp_path_factory.mktemp("evaluate")
    summary = data.generate_synthetic(root / "data", train_studies=1, validate_studies=1,
                                      test_studies=1, chexpert_train=40, chexpert_valid=16,
                                      retrieval_candidates=3, retrieval_image_queries=1,
                                      retrieval_text_queries=2, image_size=32, seed=2, threads=2)
    torch.manual_seed(0)
    model = models.make("small")
    model.save(str(root / "random.pt"))
    queries = [q["text"] for q in data.RetrievalSet(summary["retrieval_dir"],
                                                      image_root=summary["chexpert_root"]).text_queries]
    vocab = text.build_wordpiece_vocab(queries, vocab_size=200, min_frequency=1)
    text.save_vocab(vocab, str(root / "vocab.txt"))
    return {"summary": summary, "model": root / "random.pt", "vocab": root / "vocab.txt", "root": root}


def test_evaluate_linear_protocol(eval_fixture):
    s = eval_fixture["summary"]
    runs = []
    out = ev.evaluate({"model": eval_fixture["model"], "protocol": "linear", "dataset": "chexpert",
                       "train_csv": s["chexpert_train_csv"], "test_csv": s["chexpert_valid_csv"],
                       "fractions": [0.5, 1.0], "seeds": 2, "max_epochs": 2, "image_size": 32,
                       "workers": 1, "out": eval_fixture["root"] / "linear.json", "skip_bad_rows": True},
                      callback=runs.append, name="random-init")
    assert [r["run"] for r in runs] == [1, 2, 3, 4] and all(r["total_runs"] == 4 for r in runs)
    assert all(r["bad_images"] == 0 for r in runs)  # every synthetic image decodes
    assert all(0.0 <= r["metric"] <= 1.0 and r["protocol"] == "linear" for r in runs)
    cell = out["results"].classification("linear", "random-init", "CheXpert", ev.fraction_key(1.0))
    assert cell is not None and 0.0 <= cell[0] <= 100.0
    assert "random-init" in out["table"]
    saved = ev.Results.load(str(eval_fixture["root"] / "linear.json"))
    assert saved.classification("linear", "random-init", "CheXpert", ev.fraction_key(0.5)) is not None


def test_evaluate_callback_error_stops_the_sweep(eval_fixture):
    s = eval_fixture["summary"]
    calls = []

    def boom(run):
        calls.append(run)
        raise RuntimeError("stop the sweep")

    with pytest.raises(RuntimeError, match="stop the sweep"):
        ev.evaluate(model=eval_fixture["model"], train_csv=s["chexpert_train_csv"],
                    test_csv=s["chexpert_valid_csv"], fractions=[1.0], seeds=3, max_epochs=1,
                    workers=1, callback=boom)
    assert len(calls) == 1


def test_evaluate_retrieval(eval_fixture):
    s = eval_fixture["summary"]
    out = ev.evaluate({"model": eval_fixture["model"], "protocol": "retrieval",
                       "retrieval_dir": s["retrieval_dir"], "image_root": s["chexpert_root"],
                       "vocab": eval_fixture["vocab"], "ks": [1, 3], "method_name": "rand"})
    r = out["results"]
    for direction in ("image_image", "text_image"):
        for k in (1, 3):
            mean, _ = r.retrieval("rand", direction, k)
            assert 0.0 <= mean <= 100.0
    assert "rand" in out["table"]
    # A k larger than the candidate set is refused up front, naming ks and the set's size.
    with pytest.raises(ValueError, match="ks: P@100000 needs at least 100000 retrieval candidates"):
        ev.evaluate({"model": eval_fixture["model"], "protocol": "retrieval",
                     "retrieval_dir": s["retrieval_dir"], "image_root": s["chexpert_root"],
                     "ks": [1, 100000]})


def test_evaluate_config_errors(eval_fixture, tmp_path):
    s = eval_fixture["summary"]
    base = {"model": eval_fixture["model"], "train_csv": s["chexpert_train_csv"],
            "test_csv": s["chexpert_valid_csv"]}
    with pytest.raises(ValueError, match="unknown config keys \\['epochs'\\]"):
        ev.evaluate(base, epochs=3)
    with pytest.raises(ValueError, match="model"):
        ev.evaluate({"train_csv": "x"})
    with pytest.raises(ValueError, match="protocol"):
        ev.evaluate(base, protocol="knn")
    with pytest.raises(ValueError, match="dataset"):
        ev.evaluate(base, dataset="imagenet")
    with pytest.raises(ValueError, match="retrieval_dir"):
        ev.evaluate(base, protocol="retrieval")
    with pytest.raises((ValueError, RuntimeError), match="nope.pt"):
        ev.evaluate(base, model=tmp_path / "nope.pt")
    with pytest.raises(TypeError, match="callback"):
        ev.evaluate(base, callback=1)


def test_evaluate_ctrl_c_stops_after_the_current_run(eval_fixture):
    """SIGINT while the sweep computes in C++ (GIL released) ends it at the next finished run."""
    import os
    import signal
    import threading
    s = eval_fixture["summary"]
    runs = []
    timers = []

    def on_run(run):
        runs.append(run)
        if len(runs) == 1:  # the images are loaded: interrupt the runs that follow
            timers.append(threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)))
            timers[0].start()

    try:
        with pytest.raises(KeyboardInterrupt):
            ev.evaluate(model=eval_fixture["model"], train_csv=s["chexpert_train_csv"],
                        test_csv=s["chexpert_valid_csv"], fractions=[1.0], seeds=2000, max_epochs=1,
                        workers=1, callback=on_run)
    finally:
        for t in timers:
            t.cancel()
    assert 1 <= len(runs) < 2000


def test_group_and_ranking_metrics_match_references():
    g = torch.Generator().manual_seed(3)
    scores = torch.rand(40, generator=g, dtype=torch.float64)
    groups = torch.arange(40) // 4
    targets = (groups % 3 == 0).long()
    means, ids = ev.group_mean(scores, groups)
    assert torch.equal(ids, torch.arange(10))
    assert torch.allclose(means, scores.view(10, 4).mean(1))
    assert ev.grouped_roc_auc(scores, targets, groups) == pytest.approx(
        sk.roc_auc_score(targets.view(10, 4)[:, 0].numpy(), means.numpy()))
    q, c = torch.randn(6, 5, generator=g), torch.randn(9, 5, generator=g)
    sim = ev.cosine_similarity_matrix(q, c)
    ref = torch.nn.functional.normalize(q, dim=1) @ torch.nn.functional.normalize(c, dim=1).t()
    assert torch.allclose(sim, ref, atol=1e-6)
    ql, cl = torch.arange(6) % 3, torch.arange(9) % 3
    at = ev.precision_at_ks(sim, ql, cl, [1, 3, 9])
    assert at == {k: pytest.approx(ev.precision_at_k(sim, ql, cl, k)) for k in (1, 3, 9)}
    assert at[9] == pytest.approx(1 / 3)


def test_small_helpers():
    mean, std = ev.summarize([1.0, 2.0, 3.0])
    assert mean == pytest.approx(2.0) and std == pytest.approx(1.0)
    data = pytest.importorskip("convirt.data")
    assert ev.chexpert_8x200_categories() == data.retrieval_categories()
    svg = ev.render_scatter_svg([("a", torch.randn(10, 2), torch.arange(10) % 2)], title="t",
                                category_names=["x", "y"])
    assert svg.startswith("<svg") or "<svg" in svg[:200]
    assert ev.PROTOCOLS == ("linear", "finetune", "retrieval")
    assert ev.EVALUATE_DEFAULTS["model"] is None and "retrieval_dir" in ev.EVALUATE_DEFAULTS


# -- zero_shot: classification from text prompts ------------------------------------------------

def test_zero_shot_untrained_model_on_synthetic(eval_fixture, tmp_path):
    summary = eval_fixture["summary"]
    labels = ["Atelectasis", "Cardiomegaly", "Edema", "Pleural Effusion", "Pneumonia"]
    out = tmp_path / "zs.json"
    r = ev.zero_shot(eval_fixture["model"], "chexpert", vocab=eval_fixture["vocab"],
                     test_csv=summary["chexpert_valid_csv"], labels=labels, method_name="rand",
                     workers=1, out=out)
    assert r["task"] == "CheXpert" and r["metric_name"] == "mean_auc" and r["method"] == "rand"
    assert r["labels"] == labels and len(r["per_label"]) == 5 and r["images"] == 16
    assert 0.0 <= r["metric"] <= 1.0
    assert r["results"].zero_shot("rand", "CheXpert") == pytest.approx(100 * r["metric"])
    assert "| rand |" in r["table"] and r["out"] == str(out)
    assert ev.Results.load(str(out)).zero_shot("rand", "CheXpert") == pytest.approx(100 * r["metric"])

    # A prompt dict works like a file; the default prompts are a dict in that format.
    prompts = ev.default_prompts()
    assert set(labels) <= set(prompts["labels"]) and prompts["labels"]["Edema"]["negative"]
    path = tmp_path / "prompts.json"
    path.write_text(json.dumps(prompts))
    by_dict = ev.zero_shot(eval_fixture["model"], prompts=prompts, vocab=eval_fixture["vocab"],
                           test_csv=summary["chexpert_valid_csv"], labels=labels, workers=1)
    by_path = ev.zero_shot(eval_fixture["model"], prompts=path, vocab=eval_fixture["vocab"],
                           test_csv=summary["chexpert_valid_csv"], labels=labels, workers=1)
    assert by_dict["metric"] == pytest.approx(r["metric"]) and by_path["metric"] == pytest.approx(r["metric"])


def test_zero_shot_errors(eval_fixture):
    summary = eval_fixture["summary"]
    common = dict(vocab=eval_fixture["vocab"], test_csv=summary["chexpert_valid_csv"], workers=1)
    with pytest.raises(ValueError, match=r'labels\["Edema"\]\["positive"\].*empty list'):
        ev.zero_shot(eval_fixture["model"], prompts={"labels": {"Edema": {"positive": []}}}, **common)
    with pytest.raises(ValueError, match=r'"Atelectasis" has no prompts'):
        ev.zero_shot(eval_fixture["model"], prompts={"labels": {"Edema": {"positive": ["Edema."]}}},
                     **common)
    with pytest.raises(TypeError, match="prompts must be a path, a dict or None"):
        ev.zero_shot(eval_fixture["model"], prompts=3, **common)
    with pytest.raises(ValueError, match="dataset must be one of"):
        ev.zero_shot(eval_fixture["model"], "imagenet", **common)


# -- embed / search: embeddings out of a checkpoint and a nearest-neighbour search over them --------

def test_embed_and_search_bindings(eval_fixture, tmp_path):
    models = pytest.importorskip("convirt.models")
    s = eval_fixture["summary"]
    images = str(eval_fixture["root"] / "data" / "chexpert" / "CheXpert-v1.0-small" / "valid")
    texts = tmp_path / "texts.txt"
    texts.write_text("There is a small effusion.\n\nNo pneumothorax.\n")
    out = tmp_path / "emb.safetensors"
    seen = []
    r = ev.embed(eval_fixture["model"], out, images=images, texts=texts, vocab=eval_fixture["vocab"],
                 features="both", batch_size=4, shard_size=6, workers=1, progress=seen.append)
    assert r["files"] == [str(out)] and r["resumed"] == 0 and not r["skipped"]
    assert len(r["image_paths"]) == 16 and r["texts"] == ["There is a small effusion.", "No pneumothorax."]
    assert r["tensors"] == ["image_embeddings", "image_features", "text_embeddings", "text_features"]
    assert seen[-1] == {"kind": "texts", "done": 2, "total": 2, "resumed": 0}
    tensors, meta = models.read_safetensors(str(out))
    model = models.load(str(eval_fixture["model"]))
    assert tensors["image_embeddings"].shape == (16, model.output_dim)
    assert tensors["text_features"].shape[0] == 2
    assert json.loads(meta["image_paths"]) == r["image_paths"] and meta["format"] == "convirt-embeddings"

    # Interrupted by the callback, the re-run resumes from the saved shards to the same result.
    class Stop(Exception):
        pass

    def stop(p):
        if p["kind"] == "images" and p["done"] > 6:
            raise Stop()

    part = tmp_path / "part.safetensors"
    kwargs = dict(images=images, texts=texts, vocab=eval_fixture["vocab"], features="both",
                  batch_size=4, shard_size=6, workers=1)
    with pytest.raises(Stop):
        ev.embed(eval_fixture["model"], part, progress=stop, **kwargs)
    again = ev.embed(eval_fixture["model"], part, **kwargs)
    assert again["resumed"] == 6
    resumed, _ = models.read_safetensors(str(part))
    assert all(torch.equal(resumed[k], tensors[k]) for k in tensors)

    # .npy: NumPy reads the arrays; the sidecar lists the paths.
    npy = ev.embed(eval_fixture["model"], tmp_path / "img.npy", images=images, workers=1)
    assert npy["files"] == [str(tmp_path / "img.npy"), str(tmp_path / "img.json")]
    assert np.allclose(np.load(tmp_path / "img.npy"), tensors["image_embeddings"].numpy(), atol=1e-5)
    assert json.loads((tmp_path / "img.json").read_text())["image_paths"] == r["image_paths"]
    ev.write_npy(str(tmp_path / "x.npy"), torch.arange(6, dtype=torch.int64).reshape(2, 3))
    assert np.load(tmp_path / "x.npy").tolist() == [[0, 1, 2], [3, 4, 5]]

    hits = ev.search(out, image=r["image_paths"][3], k=2)
    assert [h["rank"] for h in hits] == [1, 2]
    assert hits[0]["item"] == r["image_paths"][3] and hits[0]["index"] == 3
    assert hits[0]["score"] == pytest.approx(1.0, abs=1e-4)
    by_text = ev.search(out, "small effusion", k=100, vocab=eval_fixture["vocab"])
    assert len(by_text) == 16 and by_text[0]["score"] >= by_text[-1]["score"]
    assert len(ev.search(out, "effusion", target="texts", vocab=eval_fixture["vocab"])) == 2

    with pytest.raises(ValueError, match="k must be > 0, got 0"):
        ev.search(out, "effusion", k=0, vocab=eval_fixture["vocab"])
    with pytest.raises(ValueError, match="exactly one query"):
        ev.search(out)
    with pytest.raises(ValueError, match="images must name a folder"):
        ev.embed(eval_fixture["model"], tmp_path / "e.safetensors", images=tmp_path / "missing")
    # A re-run with another input list is refused rather than mixed into the saved shards.
    with pytest.raises(Stop):
        ev.embed(eval_fixture["model"], part, progress=stop, **kwargs)
    with pytest.raises(ValueError, match="another list of images or texts"):
        ev.embed(eval_fixture["model"], part, **dict(kwargs, texts=""))
