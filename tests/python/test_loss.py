import math

import pytest
import torch

import convirt


def paper_loss(v, u, tau, lam):
    """The paper's formula, written independently of the library (float64)."""
    v = torch.nn.functional.normalize(v.double(), dim=1)
    u = torch.nn.functional.normalize(u.double(), dim=1)
    s = v @ u.t() / tau
    i2t = -(s.diagonal() - torch.logsumexp(s, dim=1))
    t2i = -(s.diagonal() - torch.logsumexp(s, dim=0))
    return (lam * i2t + (1 - lam) * t2i).mean()


@pytest.mark.parametrize("backend", ["reference", "fused", "auto"])
@pytest.mark.parametrize("n,d", [(1, 3), (7, 5), (64, 128), (257, 33)])
def test_matches_paper_formula(backend, n, d):
    torch.manual_seed(n * 100 + d)
    v, u = torch.randn(n, d), torch.randn(n, d)
    got = convirt.infonce_loss(v, u, temperature=0.1, image_to_text_weight=0.75, backend=backend)
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(paper_loss(v, u, 0.1, 0.75).item(), rel=1e-5, abs=1e-5)


@pytest.mark.parametrize("backend", ["reference", "fused"])
def test_gradcheck_float64(backend):
    torch.manual_seed(0)
    v = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    u = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    tau = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    fn = lambda a, b, t: convirt.infonce_loss(a, b, temperature=t, backend=backend)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (v, u, tau), eps=1e-6, atol=1e-7)


def test_fused_gradients_match_reference():
    torch.manual_seed(1)
    grads = {}
    for backend in ("reference", "fused"):
        v = torch.randn(100, 32, generator=torch.Generator().manual_seed(5)).requires_grad_()
        u = torch.randn(100, 32, generator=torch.Generator().manual_seed(6)).requires_grad_()
        tau = torch.tensor(0.07, requires_grad=True)
        convirt.infonce_loss(v, u, temperature=tau, backend=backend).backward()
        grads[backend] = (v.grad, u.grad, tau.grad)
    for a, b in zip(grads["reference"], grads["fused"]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_stats_and_lambda_extremes():
    torch.manual_seed(2)
    v, u = torch.randn(16, 8), torch.randn(16, 8)
    out = convirt.infonce_loss(v, u, image_to_text_weight=1.0, return_stats=True)
    assert isinstance(out, convirt.InfoNCEOutput)
    assert out.loss.item() == pytest.approx(out.image_to_text.item(), rel=1e-5)
    out0 = convirt.infonce_loss(v, u, image_to_text_weight=0.0, return_stats=True)
    assert out0.loss.item() == pytest.approx(out0.text_to_image.item(), rel=1e-5)
    perfect = convirt.infonce_loss(v, v, return_stats=True)
    assert perfect.image_to_text_accuracy.item() == 1.0
    assert perfect.text_to_image_accuracy.item() == 1.0


def test_module_and_learnable_temperature():
    crit = convirt.InfoNCELoss(temperature=0.5, learnable_temperature=True)
    assert set(dict(crit.named_parameters())) == {"log_temperature"}
    assert crit.temperature.item() == pytest.approx(0.5, rel=1e-6)
    v = torch.randn(8, 4)
    loss = crit(v, v + 0.01 * torch.randn(8, 4))
    loss.backward()
    grad = crit.log_temperature.grad
    assert grad is not None and math.isfinite(grad.item()) and grad.item() != 0
    assert "learnable" in repr(crit)
    fixed = convirt.InfoNCELoss(temperature=0.1)
    assert len(list(fixed.parameters())) == 0


@pytest.mark.parametrize("sign", [1.0, -1.0])  # one step towards each bound
def test_learnable_temperature_stays_in_bounds_after_a_huge_step(sign):
    """A single SGD step of any size cannot make tau non-positive (log-space parameter, clamped as
    CLIP clamps its logit scale); the next call still works and gives a finite loss."""
    torch.manual_seed(0)
    crit = convirt.InfoNCELoss(temperature=0.1, learnable_temperature=True)
    v, u = torch.randn(16, 8), torch.randn(16, 8)
    (sign * crit(v, u)).backward()
    assert crit.log_temperature.grad.item() != 0
    torch.optim.SGD(crit.parameters(), lr=1e6).step()
    tau = crit.temperature.item()
    assert crit.MIN_TEMPERATURE * (1 - 1e-6) <= tau <= crit.MAX_TEMPERATURE * (1 + 1e-6)
    assert tau in (pytest.approx(crit.MIN_TEMPERATURE), pytest.approx(crit.MAX_TEMPERATURE))
    assert math.isfinite(crit(v, u).item())


def test_learnable_temperature_gradcheck_float64():
    crit = convirt.InfoNCELoss(temperature=0.3, learnable_temperature=True, backend="reference").double()
    try:
        from torch.func import functional_call
    except ImportError:  # LibTorch 1.13's Python
        from torch.nn.utils.stateless import functional_call
    v = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    u = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    log_t = torch.tensor(math.log(0.3), dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda a, b, t: functional_call(crit, {"log_temperature": t}, (a, b)), (v, u, log_t))


def test_fixed_temperature_is_the_exact_float64_value():
    crit = convirt.InfoNCELoss(temperature=0.1)
    assert crit.temperature.dtype == torch.float64 and crit.temperature.item() == 0.1
    v, u = torch.randn(8, 4), torch.randn(8, 4)
    assert torch.equal(crit(v, u), convirt.infonce_loss(v, u, temperature=0.1))


def test_low_precision_inputs_give_float32_loss():
    v, u = torch.randn(20, 16).bfloat16(), torch.randn(20, 16).bfloat16()
    assert convirt.infonce_loss(v, u).dtype == torch.float32


def test_errors_are_typed_and_name_the_argument():
    ok = torch.randn(4, 3)
    with pytest.raises(ValueError, match=r"image_emb must be 2-D \[N, D\], got \[4, 3, 2\]"):
        convirt.infonce_loss(torch.randn(4, 3, 2), ok)
    with pytest.raises(ValueError, match=r"same number of rows N, got 4 and 5"):
        convirt.infonce_loss(ok, torch.randn(5, 3))
    with pytest.raises(ValueError, match=r"at least one row"):
        convirt.infonce_loss(torch.randn(0, 3), torch.randn(0, 3))
    with pytest.raises(TypeError, match=r"text_emb must be floating point"):
        convirt.infonce_loss(ok, torch.ones(4, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"temperature must be > 0, got -1"):
        convirt.infonce_loss(ok, ok, temperature=-1.0)
    with pytest.raises(ValueError, match=r"image_to_text_weight must be in \[0, 1\], got 2"):
        convirt.infonce_loss(ok, ok, image_to_text_weight=2.0)
    with pytest.raises(ValueError, match=r"backend must be one of"):
        convirt.infonce_loss(ok, ok, backend="fast")
    with pytest.raises(ValueError, match=r"temperature must be > 0"):
        convirt.InfoNCELoss(temperature=0.0)


def test_nonfinite_input_gives_nonfinite_loss():
    v = torch.randn(6, 4)
    v[1, 1] = float("nan")
    assert not math.isfinite(convirt.infonce_loss(v, torch.randn(6, 4)).item())


def test_dispatcher_ops_are_registered():
    assert hasattr(torch.ops.convirt, "infonce_loss")
    assert hasattr(torch.ops.convirt, "infonce_forward")
    assert isinstance(convirt.__version__, str) and convirt.__version__.count(".") == 2
    assert isinstance(convirt.cuda_kernels_available, bool)


@pytest.mark.skipif(not hasattr(getattr(torch, "library", None), "opcheck"),
                    reason="torch.library.opcheck needs torch >= 2.4")
def test_opcheck():
    v, u = torch.randn(8, 4, requires_grad=True), torch.randn(8, 4, requires_grad=True)
    torch.library.opcheck(torch.ops.convirt.infonce_fused.default,
                          (v, u, torch.tensor(0.1), 0.75))


def test_float_temperature_on_a_device_is_filled_there_and_checked_on_the_host():
    # The meta device stands in for CUDA: same device path, and reading tau back (a host sync on
    # CUDA) raises there, so this fails if the op or the wrapper reads tau on a device.
    a = torch.empty(5, 3, device="meta")
    b = torch.empty(5, 3, device="meta")
    loss = convirt.infonce_loss(a, b, temperature=0.1, backend="reference")
    assert loss.device.type == "meta"
    with pytest.raises(ValueError, match=r"temperature must be > 0, got -1"):
        convirt.infonce_loss(a, b, temperature=-1.0)
