"""convirt.dist from Python: the loss over convirt's own group and over a torch.distributed
group, each on 2 ranks (started with convirt.dist.launch), against the paper's formula on the
whole batch."""
import os
import sys
import textwrap

import pytest
import torch

import convirt  # noqa: F401  (loads the extension)
import convirt.dist as cdist


def paper_loss(v, u, tau, lam):
    """The paper's formula on the whole batch, written independently of the library (float64)."""
    v = torch.nn.functional.normalize(v.double(), dim=1)
    u = torch.nn.functional.normalize(u.double(), dim=1)
    s = v @ u.t() / tau
    i2t = -(s.diagonal() - torch.logsumexp(s, dim=1))
    t2i = -(s.diagonal() - torch.logsumexp(s, dim=0))
    return (lam * i2t + (1 - lam) * t2i).mean()


def batch():
    g = torch.Generator().manual_seed(5)
    v = torch.randn(9, 6, generator=g, dtype=torch.float64)
    return v, v + 0.7 * torch.randn(9, 6, generator=g, dtype=torch.float64)


def test_single_process_equals_the_formula():
    v, u = batch()
    v1 = v.clone().requires_grad_(True)
    v2 = v.clone().requires_grad_(True)
    ref = paper_loss(v1, u, 0.1, 0.75)
    ref.backward()
    got = cdist.infonce_loss_distributed(v2, u, cdist.DistributedContext())
    got.backward()
    assert got.item() == pytest.approx(ref.item(), abs=1e-12)
    assert torch.allclose(v1.grad, v2.grad, atol=1e-12)
    # No group and no torch.distributed: one process too.
    assert cdist.infonce_loss_distributed(v, u).item() == pytest.approx(ref.item(), abs=1e-12)


def test_errors_are_python_exceptions():
    ctx = cdist.DistributedContext()
    with pytest.raises(ValueError, match="same width"):
        cdist.infonce_loss_distributed(torch.randn(3, 4), torch.randn(3, 5), ctx)
    with pytest.raises(ValueError, match="op must be one of"):
        ctx.all_reduce_(torch.ones(2), "mean")
    with pytest.raises(ValueError, match="rank must be in"):
        cdist.DistributedContext(rank=2, world_size=2)
    with pytest.raises(ValueError, match="nproc must be >= 1"):
        cdist.launch_local(0, ["true"])
    assert list(cdist.shard_range(10, 1, 3)) == [4, 5, 6]


def test_launch_reports_the_failed_rank(tmp_path):
    script = "import os, sys; sys.exit(5 if os.environ['RANK'] == '1' else 0)"
    assert cdist.launch([sys.executable, "-c", script], nproc=2) == 5


WORKER = textwrap.dedent(
    """
    import os, sys
    sys.path[:0] = {path!r}
    import torch, torch.distributed as tdist
    import convirt, convirt.dist as cdist

    torch.set_num_threads(1)
    ctx = cdist.DistributedContext.from_environment()
    tdist.init_process_group("gloo", init_method="tcp://127.0.0.1:" + os.environ["TORCH_PORT"],
                             rank=ctx.rank, world_size=ctx.world_size)
    g = torch.Generator().manual_seed(5)
    v = torch.randn(9, 6, generator=g, dtype=torch.float64)
    u = v + 0.7 * torch.randn(9, 6, generator=g, dtype=torch.float64)
    rows = cdist.shard_range(9, ctx.rank, ctx.world_size)
    out = {{}}
    for name, group in (("convirt", ctx), ("torch", None)):
        vl = v[rows.start:rows.stop].clone().requires_grad_(True)
        ul = u[rows.start:rows.stop].clone().requires_grad_(True)
        tau = torch.tensor(0.2, dtype=torch.float64, requires_grad=True)
        res = cdist.infonce_loss_distributed(vl, ul, group, temperature=tau,
                                             image_to_text_weight=0.6, return_stats=True)
        res.loss.backward()
        out[name] = [res.loss.detach(), vl.grad, ul.grad, tau.grad]
    # The one InfoNCELoss module, given the group, learns log tau over the global batch.
    crit = convirt.InfoNCELoss(temperature=0.2, image_to_text_weight=0.6,
                               learnable_temperature=True, group=ctx).double()
    vl = v[rows.start:rows.stop].clone().requires_grad_(True)
    crit(vl, u[rows.start:rows.stop]).backward()
    out["module"] = [vl.grad, crit.log_temperature.grad]
    lin = torch.nn.Linear(3, 2).double()
    if ctx.rank == 1:
        with torch.no_grad():
            lin.weight.add_(1.0)
    cdist.broadcast_parameters(lin, ctx)
    sync = cdist.GradientSynchronizer(list(lin.parameters()), ctx, bucket_cap_mb=1e-6)
    lin(torch.full((1, 3), float(ctx.rank + 1), dtype=torch.float64)).sum().backward()
    sync.synchronize()
    out["lin"] = [lin.weight.detach().clone(), lin.weight.grad.clone()]
    torch.save(out, os.path.join(os.environ["OUT_DIR"], "rank%d.pt" % ctx.rank))
    tdist.destroy_process_group()
    """
)


@pytest.mark.skipif(not cdist.gloo_available(), reason="this build of convirt.dist has no Gloo")
def test_two_ranks_equal_one_process_on_the_whole_batch(tmp_path, monkeypatch):
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER.format(path=[p for p in sys.path if p]))
    monkeypatch.setenv("OUT_DIR", str(tmp_path))
    monkeypatch.setenv("TORCH_PORT", str(cdist.find_free_port()))
    monkeypatch.setenv("CONVIRT_DIST_TIMEOUT", "60")
    assert cdist.launch([sys.executable, str(worker)], nproc=2) == 0
    r = [torch.load(tmp_path / f"rank{k}.pt") for k in range(2)]

    v, u = batch()
    v.requires_grad_(True)
    u.requires_grad_(True)
    tau = torch.tensor(0.2, dtype=torch.float64, requires_grad=True)
    ref = paper_loss(v, u, tau, 0.6)
    ref.backward()
    for name in ("convirt", "torch"):
        for k in range(2):
            assert r[k][name][0].item() == pytest.approx(ref.item(), abs=1e-12), name
        assert torch.allclose(torch.cat([r[0][name][1], r[1][name][1]]), v.grad, atol=1e-12), name
        assert torch.allclose(torch.cat([r[0][name][2], r[1][name][2]]), u.grad, atol=1e-12), name
        assert (r[0][name][3] + r[1][name][3]).item() == pytest.approx(tau.grad.item(), abs=1e-12)
    assert torch.allclose(torch.cat([r[0]["module"][0], r[1]["module"][0]]), v.grad, atol=1e-12)
    log_tau_grad = (r[0]["module"][1] + r[1]["module"][1]).item()
    # log(0.2) is stored as a float32 parameter before .double(), so tau is 0.2 to float32 precision.
    assert log_tau_grad == pytest.approx(0.2 * tau.grad.item(), rel=1e-6)
    # Broadcast made the weights equal; the gradient is the sum over ranks of x = rank + 1.
    assert torch.equal(r[0]["lin"][0], r[1]["lin"][0])
    assert torch.allclose(r[0]["lin"][1], torch.full((2, 3), 3.0, dtype=torch.float64))
