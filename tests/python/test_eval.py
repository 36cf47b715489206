"""convirt.eval against scikit-learn / NumPy references (run with /usr/bin/python3 -m pytest,
PYTHONPATH=build/python)."""
import json
import math

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
