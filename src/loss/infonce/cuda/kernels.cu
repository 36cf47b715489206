// Launchers of the fused InfoNCE kernels and their explicit instantiations (fp32, fp16, bf16).
// Runtime choices (element type, aligned vector loads) become template/kernel arguments here and
// nowhere else.

#include <convirt/loss/infonce/cuda/launch.h>
#include <convirt/loss/infonce/cuda/kernel.cuh>

#include <cmath>
#include <cstdint>
#include <limits>

namespace convirt::kernels::infonce {

// Device-independent: the split count depends on n only, so a given input reduces in the same order
// on every GPU (264 = 2 waves of an H100's 132 SMs, enough blocks for any current part).
constexpr int64_t kTargetForwardBlocks = 264;

namespace {

constexpr size_t kAlign = 256;

size_t align_up(size_t x) {
  return (x + kAlign - 1) / kAlign * kAlign;
}
int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

struct ForwardLayout {
  ForwardGeometry geo;
  size_t row_part_offset;
  size_t col_part_offset;
  size_t loss_part_offset;
  int64_t loss_blocks;
  size_t total;
};

ForwardLayout forward_layout(int64_t n, ScalarKind dtype) {
  ForwardLayout l{};
  l.geo = forward_geometry(n, dtype);
  l.loss_blocks = ceil_div(n, kReduceThreads);
  const auto un = static_cast<size_t>(n);
  l.row_part_offset = 0;
  l.col_part_offset =
      align_up(static_cast<size_t>(l.geo.col_splits) * un * sizeof(float2) + l.row_part_offset);
  l.loss_part_offset =
      align_up(l.col_part_offset + static_cast<size_t>(l.geo.row_blocks) * un * sizeof(float2));
  l.total = align_up(l.loss_part_offset + static_cast<size_t>(l.loss_blocks) * sizeof(float));
  return l;
}

int backward_rows(ScalarKind dtype) {
  return dtype == ScalarKind::kFloat32 ? ElementTraits<float>::Backward::kRows
                                       : ElementTraits<__nv_bfloat16>::Backward::kRows;
}

bool aligned16(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % 16 == 0;
}

template <typename T>
cudaError_t launch_forward(const ForwardParams& p, const ForwardLayout& l, cudaStream_t stream) {
  using Traits = ElementTraits<T>;
  using Storage = typename Traits::Storage;
  using Cfg = typename Traits::Forward;
  constexpr int kVec = 16 / sizeof(Storage);
  auto* ws = static_cast<unsigned char*>(p.workspace);
  auto* row_part = reinterpret_cast<float2*>(ws + l.row_part_offset);
  auto* col_part = reinterpret_cast<float2*>(ws + l.col_part_offset);
  auto* loss_part = reinterpret_cast<float*>(ws + l.loss_part_offset);

  ForwardTilesArgs<Storage> args{};
  args.a = static_cast<const Storage*>(p.image);
  args.b = static_cast<const Storage*>(p.text);
  args.temperature = p.temperature;
  args.n = p.n;
  args.d = p.d;
  args.col_tiles = l.geo.col_tiles;
  args.tiles_per_split = l.geo.tiles_per_split;
  args.row_part = row_part;
  args.col_part = col_part;
  args.diag = p.diag;
  args.vec_ok = p.d % kVec == 0 && aligned16(p.image) && aligned16(p.text);

  constexpr int kSmem = forward_smem_bytes<Cfg, Storage>();
  cudaError_t err = cudaFuncSetAttribute(forward_tiles_kernel<T>,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem);
  if (err != cudaSuccess) return err;
  const dim3 grid(static_cast<unsigned>(l.geo.row_blocks), static_cast<unsigned>(l.geo.col_splits));
  CONVIRT_LAUNCH(forward_tiles_kernel<T>, grid, Cfg::kThreads, kSmem, stream)(args);
  if ((err = cudaGetLastError()) != cudaSuccess) return err;

  FinalizeArgs fin{};
  fin.row_part = row_part;
  fin.col_splits = l.geo.col_splits;
  fin.col_part = col_part;
  fin.row_blocks = l.geo.row_blocks;
  fin.diag = p.diag;
  fin.n = p.n;
  fin.lambda = p.image_to_text_weight;
  fin.row_lse = p.row_lse;
  fin.col_lse = p.col_lse;
  fin.row_max = p.row_max;
  fin.col_max = p.col_max;
  fin.loss_part = loss_part;
  CONVIRT_LAUNCH(forward_finalize_kernel, static_cast<unsigned>(l.loss_blocks), kReduceThreads, 0,
                 stream)
  (fin);
  if ((err = cudaGetLastError()) != cudaSuccess) return err;

  CONVIRT_LAUNCH(reduce_kernel, 1, kReduceThreads, 0, stream)
  (loss_part, l.loss_blocks, static_cast<float>(1.0 / static_cast<double>(p.n)), nullptr, false,
   p.loss);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_backward_side(const BackwardParams& p, bool image_side, float* tau_part,
                                 cudaStream_t stream) {
  using Traits = ElementTraits<T>;
  using Storage = typename Traits::Storage;
  using Cfg = typename Traits::Backward;
  constexpr int kVec = 16 / sizeof(Storage);
  BackwardArgs<Storage> args{};
  args.p = static_cast<const Storage*>(image_side ? p.image : p.text);
  args.q = static_cast<const Storage*>(image_side ? p.text : p.image);
  args.temperature = p.temperature;
  args.grad_loss = p.grad_loss;
  args.lse_p = image_side ? p.row_lse : p.col_lse;
  args.lse_q = image_side ? p.col_lse : p.row_lse;
  args.n = p.n;
  args.d = p.d;
  const float lambda = p.image_to_text_weight;
  args.weight_p = image_side ? lambda : 1.0f - lambda;
  args.weight_q = image_side ? 1.0f - lambda : lambda;
  args.out = static_cast<Storage*>(image_side ? p.grad_image : p.grad_text);
  args.tau_part = tau_part;
  args.vec_ok = p.d % kVec == 0 && aligned16(p.image) && aligned16(p.text);

  constexpr int kSmem = backward_smem_bytes<Cfg, Storage>();
  cudaError_t err =
      cudaFuncSetAttribute(backward_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem);
  if (err != cudaSuccess) return err;
  const dim3 grid(static_cast<unsigned>(ceil_div(p.n, Cfg::kRows)),
                  static_cast<unsigned>(ceil_div(p.d, Cfg::kChunk)));
  CONVIRT_LAUNCH(backward_kernel<T>, grid, Cfg::kThreads, kSmem, stream)(args);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_backward(const BackwardParams& p, cudaStream_t stream) {
  auto* tau_part = static_cast<float*>(p.workspace);
  cudaError_t err = launch_backward_side<T>(p, true, tau_part, stream);
  if (err != cudaSuccess) return err;
  err = launch_backward_side<T>(p, false, nullptr, stream);
  if (err != cudaSuccess) return err;
  const int64_t blocks = ceil_div(p.n, ElementTraits<T>::Backward::kRows);
  // grad_tau = -(sum_ij dS_ij S_ij) / tau.
  CONVIRT_LAUNCH(reduce_kernel, 1, kReduceThreads, 0, stream)
  (tau_part, blocks, -1.0f, p.temperature, true, p.grad_temperature);
  return cudaGetLastError();
}

bool valid_dtype(ScalarKind k) {
  return k == ScalarKind::kFloat32 || k == ScalarKind::kFloat16 || k == ScalarKind::kBFloat16;
}

}  // namespace

__global__ void __launch_bounds__(kReduceThreads) forward_finalize_kernel(FinalizeArgs args) {
  __shared__ float scratch[kReduceThreads];
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kReduceThreads + threadIdx.x;
  float contrib = 0.0f;
  if (i < args.n) {
    tm::LseState<float> rs = tm::lse_empty<float>();
    for (int64_t s = 0; s < args.col_splits; ++s) {
      rs = tm::lse_merge(rs, detail::from_float2(args.row_part[s * args.n + i]));
    }
    tm::LseState<float> cs = tm::lse_empty<float>();
    for (int64_t b = 0; b < args.row_blocks; ++b) {
      cs = tm::lse_merge(cs, detail::from_float2(args.col_part[b * args.n + i]));
    }
    const float row_lse = tm::lse_value(rs);
    const float col_lse = tm::lse_value(cs);
    args.row_lse[i] = row_lse;
    args.col_lse[i] = col_lse;
    args.row_max[i] = rs.max;
    args.col_max[i] = cs.max;
    contrib = tm::example_loss(row_lse, col_lse, args.diag[i], args.lambda);
  }
  const float total = detail::block_sum<kReduceThreads>(contrib, scratch);
  if (threadIdx.x == 0) args.loss_part[blockIdx.x] = total;
}

__global__ void __launch_bounds__(kReduceThreads)
    reduce_kernel(const float* in, int64_t count, float scale, const float* scale_ptr,
                  bool reciprocal_scale_ptr, float* out) {
  __shared__ float scratch[kReduceThreads];
  float acc = 0.0f;
  for (int64_t k = threadIdx.x; k < count; k += kReduceThreads) acc += in[k];
  const float total = detail::block_sum<kReduceThreads>(acc, scratch);
  if (threadIdx.x == 0) {
    float f = scale;
    if (scale_ptr != nullptr) f *= reciprocal_scale_ptr ? 1.0f / *scale_ptr : *scale_ptr;
    out[0] = total * f;
  }
}

__global__ void fill_kernel(float* out, float value) {
  out[0] = value;
}

const char* to_string(ScalarKind kind) {
  switch (kind) {
    case ScalarKind::kFloat32:
      return "float32";
    case ScalarKind::kFloat16:
      return "float16";
    case ScalarKind::kBFloat16:
      return "bfloat16";
  }
  return "unknown";
}

ForwardGeometry forward_geometry(int64_t n, ScalarKind dtype) {
  ForwardGeometry g{};
  g.tile_rows = dtype == ScalarKind::kFloat32 ? ElementTraits<float>::Forward::kRows
                                              : ElementTraits<__nv_bfloat16>::Forward::kRows;
  g.tile_cols = g.tile_rows;
  g.row_blocks = ceil_div(n, g.tile_rows);
  g.col_tiles = g.row_blocks;
  if (n <= 0) return g;
  int64_t splits = ceil_div(kTargetForwardBlocks, g.row_blocks);
  splits = splits < 1 ? 1 : (splits > g.col_tiles ? g.col_tiles : splits);
  g.tiles_per_split = ceil_div(g.col_tiles, splits);
  g.col_splits = ceil_div(g.col_tiles, g.tiles_per_split);  // no split is left without tiles
  return g;
}

size_t forward_workspace_bytes(int64_t n, ScalarKind dtype) {
  return n <= 0 ? 0 : forward_layout(n, dtype).total;
}

size_t backward_workspace_bytes(int64_t n, ScalarKind dtype) {
  return n <= 0 ? 0
                : align_up(static_cast<size_t>(ceil_div(n, backward_rows(dtype))) * sizeof(float));
}

cudaError_t forward(const ForwardParams& p, cudaStream_t stream) {
  if (p.n < 0 || p.d < 0 || !valid_dtype(p.dtype) || p.loss == nullptr)
    return cudaErrorInvalidValue;
  if (p.n == 0) {
    CONVIRT_LAUNCH(fill_kernel, 1, 1, 0, stream)(p.loss, std::numeric_limits<float>::quiet_NaN());
    return cudaGetLastError();
  }
  if (p.image == nullptr || p.text == nullptr || p.temperature == nullptr || p.row_lse == nullptr ||
      p.col_lse == nullptr || p.diag == nullptr || p.row_max == nullptr || p.col_max == nullptr ||
      p.workspace == nullptr) {
    return cudaErrorInvalidValue;
  }
  const ForwardLayout l = forward_layout(p.n, p.dtype);
  if (p.workspace_bytes < l.total || l.geo.col_splits > 65535 ||
      l.geo.row_blocks > std::numeric_limits<int32_t>::max()) {
    return cudaErrorInvalidValue;
  }
  switch (p.dtype) {
    case ScalarKind::kFloat32:
      return launch_forward<float>(p, l, stream);
    case ScalarKind::kFloat16:
      return launch_forward<__half>(p, l, stream);
    case ScalarKind::kBFloat16:
      return launch_forward<__nv_bfloat16>(p, l, stream);
  }
  return cudaErrorInvalidValue;
}

cudaError_t backward(const BackwardParams& p, cudaStream_t stream) {
  if (p.n < 0 || p.d < 0 || !valid_dtype(p.dtype) || p.grad_temperature == nullptr) {
    return cudaErrorInvalidValue;
  }
  if (p.n == 0 || p.d == 0) {
    // No pairs, or S == 0 everywhere: sum dS * S vanishes; the gradients have no elements.
    CONVIRT_LAUNCH(fill_kernel, 1, 1, 0, stream)(p.grad_temperature, 0.0f);
    return cudaGetLastError();
  }
  if (p.image == nullptr || p.text == nullptr || p.temperature == nullptr ||
      p.grad_loss == nullptr || p.row_lse == nullptr || p.col_lse == nullptr ||
      p.grad_image == nullptr || p.grad_text == nullptr || p.workspace == nullptr ||
      p.workspace_bytes < backward_workspace_bytes(p.n, p.dtype)) {
    return cudaErrorInvalidValue;
  }
  if (ceil_div(p.d, ElementTraits<float>::Backward::kChunk) > 65535 ||
      ceil_div(p.n, backward_rows(p.dtype)) > std::numeric_limits<int32_t>::max()) {
    return cudaErrorInvalidValue;
  }
  switch (p.dtype) {
    case ScalarKind::kFloat32:
      return launch_backward<float>(p, stream);
    case ScalarKind::kFloat16:
      return launch_backward<__half>(p, stream);
    case ScalarKind::kBFloat16:
      return launch_backward<__nv_bfloat16>(p, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace convirt::kernels::infonce
