"""The fused CUDA InfoNCE kernels from Python (torch.ops.convirt): agreement with a float64
formulation, fp32 finite differences, bit-identical reruns, autocast. Skipped without a GPU."""
import pytest
import torch
import torch.nn.functional as F

convirt = pytest.importorskip("convirt")

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available() or not convirt.cuda_kernels_available,
    reason="no CUDA device (or convirt built without its CUDA kernels)")


def fused_loss(a, b, tau, lam=0.75, normalize=True):
    return torch.ops.convirt.infonce_loss(a, b, tau, lam, normalize, 1e-12, "fused")[0]


def naive_loss(a, b, tau, lam=0.75):
    """The formulation users would write: materialised logits, two cross-entropies."""
    a = F.normalize(a, dim=1)
    b = F.normalize(b, dim=1)
    logits = a @ b.t() / tau
    target = torch.arange(a.shape[0], device=a.device)
    return lam * F.cross_entropy(logits, target) + (1 - lam) * F.cross_entropy(logits.t(), target)


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-4), (torch.float16, 5e-2),
                                       (torch.bfloat16, 5e-2)])
@pytest.mark.parametrize("n,d", [(1, 8), (7, 5), (129, 33), (300, 128)])
def test_cuda_matches_float64(n, d, dtype, tol):
    a0 = torch.randn(n, d, dtype=torch.float64).to(dtype).double()
    b0 = torch.randn(n, d, dtype=torch.float64).to(dtype).double()
    tau0 = torch.tensor(0.1, dtype=torch.float64)
    a, b = a0.clone().requires_grad_(), b0.clone().requires_grad_()
    tau = tau0.clone().requires_grad_()
    ref = naive_loss(a, b, tau)
    ref.backward()

    ac = a0.to("cuda", dtype).requires_grad_()
    bc = b0.to("cuda", dtype).requires_grad_()
    tc = tau0.to("cuda", torch.float32).requires_grad_()
    out = fused_loss(ac, bc, tc)
    assert out.dtype == torch.float32  # 16-bit in, fp32 loss out
    out.backward()
    assert abs(out.item() - ref.item()) <= tol * (1 + abs(ref.item()))
    if n > 1:
        for got, want in [(ac.grad, a.grad), (bc.grad, b.grad)]:
            assert got.dtype == dtype and torch.isfinite(got).all()
            rel = (got.double().cpu() - want).norm() / want.norm()
            assert rel <= tol
        assert abs(tc.grad.item() - tau.grad.item()) <= tol * (1e-3 + abs(tau.grad.item()))


def test_cuda_fp32_directional_finite_differences():
    n, d = 50, 40
    a = torch.randn(n, d, device="cuda", requires_grad=True)
    b = torch.randn(n, d, device="cuda", requires_grad=True)
    tau = torch.tensor(0.2, device="cuda")
    fused_loss(a, b, tau, 0.3).backward()
    for _ in range(3):
        va, vb = torch.randn_like(a, dtype=torch.float64), torch.randn_like(b, dtype=torch.float64)
        h = 1e-4
        # fp64 evaluations (the op's fp64 CUDA path) around the fp32 point.
        lp = fused_loss(a.double() + h * va, b.double() + h * vb, tau.double(), 0.3).item()
        lm = fused_loss(a.double() - h * va, b.double() - h * vb, tau.double(), 0.3).item()
        fd = (lp - lm) / (2 * h)
        an = ((a.grad.double() * va).sum() + (b.grad.double() * vb).sum()).item()
        assert abs(fd - an) <= 1e-4 * (1 + abs(fd))


def test_cuda_fp64_gradcheck():
    a = torch.randn(6, 5, device="cuda", dtype=torch.float64, requires_grad=True)
    b = torch.randn(6, 5, device="cuda", dtype=torch.float64, requires_grad=True)
    tau = torch.tensor(0.3, device="cuda", dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, y, t: fused_loss(x, y, t, 0.6), (a, b, tau))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_cuda_bit_identical_reruns(dtype):
    a0 = torch.randn(1000, 96, device="cuda").to(dtype)
    b0 = torch.randn(1000, 96, device="cuda").to(dtype)
    tau = torch.tensor(0.1, device="cuda")
    results = []
    for _ in range(2):
        a, b = a0.clone().requires_grad_(), b0.clone().requires_grad_()
        loss = fused_loss(a, b, tau)
        loss.backward()
        results.append((loss.detach(), a.grad, b.grad))
    for x, y in zip(*results):
        assert torch.equal(x, y)


def test_cuda_autocast_bf16_in_fp32_out():
    lin = torch.nn.Linear(32, 16).cuda()
    x, y = torch.randn(64, 32, device="cuda"), torch.randn(64, 32, device="cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        a, b = lin(x), lin(y)
        assert a.dtype == torch.bfloat16
        loss = fused_loss(a, b, torch.tensor(0.1, device="cuda"))
    assert loss.dtype == torch.float32
    loss.backward()
    assert lin.weight.grad is not None and torch.isfinite(lin.weight.grad).all()
