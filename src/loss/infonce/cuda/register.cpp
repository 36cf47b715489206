// CUDA kernels of convirt::infonce_forward / convirt::infonce_backward: registered for the CUDA
// dispatch key of the ops that src/loss/ defines, so convirt::infonce_loss (C++) and
// torch.ops.convirt.* (Python) reach them for CUDA tensors through the same autograd function as
// the fused CPU path. Inputs were validated by the caller (infonce_loss); only invariants are
// asserted.
//
// fp32 / fp16 / bf16 run the tensor-core kernels (fp32 accumulation, fp32 statistics and loss).
// fp64 has no tensor-core path: it runs the materialised formulation in ATen on the device, in
// fp64.

#include <convirt/loss/infonce/cuda/launch.h>

#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <tuple>

namespace convirt::detail {
namespace {

namespace ki = convirt::kernels::infonce;
using at::Tensor;
using ForwardResult = std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor>;
using BackwardResult = std::tuple<Tensor, Tensor, Tensor>;

ki::ScalarKind kind_of(at::ScalarType t) {
  switch (t) {
    case at::kFloat:
      return ki::ScalarKind::kFloat32;
    case at::kHalf:
      return ki::ScalarKind::kFloat16;
    case at::kBFloat16:
      return ki::ScalarKind::kBFloat16;
    default:
      TORCH_INTERNAL_ASSERT(false, "infonce CUDA kernels: unsupported dtype ", t);
  }
  return ki::ScalarKind::kFloat32;
}

void check_launch(cudaError_t err, const char* what) {
  TORCH_CHECK(err == cudaSuccess, "convirt::", what, " (CUDA): ", cudaGetErrorName(err), ": ",
              cudaGetErrorString(err));
}

void assert_inputs(const Tensor& image, const Tensor& text, const Tensor& temperature) {
  TORCH_INTERNAL_ASSERT(image.is_cuda() && image.dim() == 2 && text.sizes() == image.sizes());
  TORCH_INTERNAL_ASSERT(text.device() == image.device() && temperature.device() == image.device());
  TORCH_INTERNAL_ASSERT(text.scalar_type() == image.scalar_type() && temperature.numel() == 1);
}

Tensor byte_workspace(size_t bytes, const Tensor& like) {
  return at::empty({static_cast<int64_t>(bytes)}, like.options().dtype(at::kByte));
}

// ---- fp64: the definition, materialised, on the device ----
ForwardResult forward_double(const Tensor& a, const Tensor& b, const Tensor& tau, double lambda) {
  const Tensor s = at::mm(a, b.t()) / tau;
  const Tensor row_lse = at::logsumexp(s, {1});
  const Tensor col_lse = at::logsumexp(s, {0});
  const Tensor diag = s.diagonal().clone();
  const Tensor row_max = std::get<0>(s.max(1));
  const Tensor col_max = std::get<0>(s.max(0));
  const Tensor loss = (lambda * (row_lse - diag) + (1.0 - lambda) * (col_lse - diag)).mean();
  return {loss, row_lse, col_lse, diag, row_max, col_max};
}

BackwardResult backward_double(const Tensor& g, const Tensor& a, const Tensor& b, const Tensor& tau,
                               double lambda, const Tensor& row_lse, const Tensor& col_lse) {
  const int64_t n = a.size(0);
  const Tensor s = at::mm(a, b.t()) / tau;
  Tensor ds = lambda * at::exp(s - row_lse.unsqueeze(1)) +
              (1.0 - lambda) * at::exp(s - col_lse.unsqueeze(0));
  ds.diagonal().sub_(1.0);
  ds.mul_(g / static_cast<double>(n));
  const Tensor grad_a = at::mm(ds, b) / tau;
  const Tensor grad_b = at::mm(ds.t(), a) / tau;
  const Tensor grad_tau = -(ds * s).sum() / tau;
  return {grad_a, grad_b, grad_tau.to(tau.scalar_type())};
}

ForwardResult infonce_forward_cuda(const Tensor& image, const Tensor& text,
                                   const Tensor& temperature, double image_to_text_weight) {
  assert_inputs(image, text, temperature);
  const c10::cuda::CUDAGuard guard(image.device());
  if (image.scalar_type() == at::kDouble) {
    return forward_double(image, text, temperature.reshape({}).to(at::kDouble),
                          image_to_text_weight);
  }
  const Tensor a = image.contiguous();
  const Tensor b = text.contiguous();
  const Tensor tau = temperature.reshape({}).to(at::kFloat).contiguous();
  const int64_t n = a.size(0);
  const auto opts = a.options().dtype(at::kFloat);
  Tensor loss = at::empty({}, opts);
  Tensor row_lse = at::empty({n}, opts), col_lse = at::empty({n}, opts);
  Tensor diag = at::empty({n}, opts);
  Tensor row_max = at::empty({n}, opts), col_max = at::empty({n}, opts);

  ki::ForwardParams p;
  p.image = a.data_ptr();
  p.text = b.data_ptr();
  p.temperature = tau.data_ptr<float>();
  p.n = n;
  p.d = a.size(1);
  p.image_to_text_weight = static_cast<float>(image_to_text_weight);
  p.dtype = kind_of(a.scalar_type());
  p.loss = loss.data_ptr<float>();
  p.row_lse = row_lse.data_ptr<float>();
  p.col_lse = col_lse.data_ptr<float>();
  p.diag = diag.data_ptr<float>();
  p.row_max = row_max.data_ptr<float>();
  p.col_max = col_max.data_ptr<float>();
  // Allocated on the current stream by the caching allocator: reuse is ordered after the kernels.
  const Tensor ws = byte_workspace(ki::forward_workspace_bytes(n, p.dtype), a);
  p.workspace = n > 0 ? ws.data_ptr() : nullptr;
  p.workspace_bytes = static_cast<size_t>(ws.numel());
  check_launch(ki::forward(p, c10::cuda::getCurrentCUDAStream().stream()), "infonce_forward");
  return {loss, row_lse, col_lse, diag, row_max, col_max};
}

BackwardResult infonce_backward_cuda(const Tensor& grad_loss, const Tensor& image,
                                     const Tensor& text, const Tensor& temperature,
                                     double image_to_text_weight, const Tensor& row_lse,
                                     const Tensor& col_lse) {
  assert_inputs(image, text, temperature);
  const c10::cuda::CUDAGuard guard(image.device());
  if (image.scalar_type() == at::kDouble) {
    return backward_double(grad_loss.reshape({}).to(at::kDouble), image, text,
                           temperature.reshape({}).to(at::kDouble), image_to_text_weight,
                           row_lse.to(at::kDouble), col_lse.to(at::kDouble));
  }
  const Tensor a = image.contiguous();
  const Tensor b = text.contiguous();
  const Tensor tau = temperature.reshape({}).to(at::kFloat).contiguous();
  const Tensor g = grad_loss.reshape({}).to(image.device(), at::kFloat).contiguous();
  const Tensor r = row_lse.to(at::kFloat).contiguous();
  const Tensor c = col_lse.to(at::kFloat).contiguous();
  const int64_t n = a.size(0);
  Tensor grad_image = at::empty_like(a, at::MemoryFormat::Contiguous);
  Tensor grad_text = at::empty_like(b, at::MemoryFormat::Contiguous);
  Tensor grad_tau = at::empty({}, a.options().dtype(at::kFloat));

  ki::BackwardParams p;
  p.image = a.data_ptr();
  p.text = b.data_ptr();
  p.temperature = tau.data_ptr<float>();
  p.grad_loss = g.data_ptr<float>();
  p.row_lse = r.data_ptr<float>();
  p.col_lse = c.data_ptr<float>();
  p.n = n;
  p.d = a.size(1);
  p.image_to_text_weight = static_cast<float>(image_to_text_weight);
  p.dtype = kind_of(a.scalar_type());
  p.grad_image = grad_image.data_ptr();
  p.grad_text = grad_text.data_ptr();
  p.grad_temperature = grad_tau.data_ptr<float>();
  const Tensor ws = byte_workspace(ki::backward_workspace_bytes(n, p.dtype), a);
  p.workspace = ws.numel() > 0 ? ws.data_ptr() : nullptr;
  p.workspace_bytes = static_cast<size_t>(ws.numel());
  check_launch(ki::backward(p, c10::cuda::getCurrentCUDAStream().stream()), "infonce_backward");
  return {grad_image, grad_text, grad_tau.to(temperature.scalar_type())};
}

}  // namespace
}  // namespace convirt::detail

TORCH_LIBRARY_IMPL(convirt, CUDA, m) {
  m.impl("infonce_forward", &convirt::detail::infonce_forward_cuda);
  m.impl("infonce_backward", &convirt::detail::infonce_backward_cuda);
}
