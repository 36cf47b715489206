#pragma once
// Plain-data parameters of the fused CUDA InfoNCE kernels. No ATen and no CUDA types, so the torch
// glue, the standalone test and the benchmark all fill the same structs (the flash-attention
// layering: params, traits, kernel, launcher, torch glue).
//
// Notation as in <convirt/loss/infonce/tile_math.h>: A = image [n, d], B = text [n, d] (row-major,
// contiguous, already L2-normalised by the caller), S = A B^T / tau, lambda = image_to_text_weight.

#include <cstddef>
#include <cstdint>

namespace convirt::kernels::infonce {

/// Element type of the embeddings. Accumulation is always fp32.
///  - kBFloat16 / kFloat16: m16n8k16 tensor-core MMA with fp32 accumulators.
///  - kFloat32: "3xTF32" (each operand split into a tf32 high part and a tf32 remainder, three
///    m16n8k8 MMAs): close to fp32 accuracy (~1e-6 relative on a dot product) at tensor-core speed.
enum class ScalarKind : int { kFloat32 = 0, kFloat16 = 1, kBFloat16 = 2 };

/// "float32", "float16" or "bfloat16".
const char* to_string(ScalarKind kind);

/// Bytes of one element of `kind`.
inline int element_size(ScalarKind kind) {
  return kind == ScalarKind::kFloat32 ? 4 : 2;
}

/// Forward: the loss and the per-row / per-column statistics, from one pass over the logit tiles.
/// All output pointers are device memory, fp32, each [n] except `loss` (one element). Every element
/// of every output is written.
struct ForwardParams {
  const void* image = nullptr;         ///< [n, d] of `dtype`
  const void* text = nullptr;          ///< [n, d] of `dtype`
  const float* temperature = nullptr;  ///< device scalar tau > 0 (read on the device: no host sync)
  int64_t n = 0;
  int64_t d = 0;
  float image_to_text_weight = 0.75f;  ///< lambda
  ScalarKind dtype = ScalarKind::kFloat32;

  float* loss =
      nullptr;  ///< (1/n) sum_i lambda (row_lse_i - diag_i) + (1-lambda)(col_lse_i - diag_i)
  float* row_lse = nullptr;  ///< logsumexp_j S_ij
  float* col_lse = nullptr;  ///< logsumexp_i S_ij
  float* diag = nullptr;     ///< S_ii
  float* row_max = nullptr;  ///< max_j S_ij
  float* col_max = nullptr;  ///< max_i S_ij

  void* workspace = nullptr;  ///< device scratch of forward_workspace_bytes(n, dtype) bytes
  size_t workspace_bytes = 0;
};

/// Floats of one buffer that holds every forward output (place_forward_outputs).
inline constexpr int64_t forward_output_floats(int64_t n) {
  return 1 + 5 * n;
}

/// Points the forward's outputs into one device buffer of forward_output_floats(n) floats, in the
/// order loss, row_lse, col_lse, diag, row_max, col_max (n each after the loss): the layout the
/// standalone test and the emulator benchmark read back.
inline void place_forward_outputs(ForwardParams& p, float* out) {
  p.loss = out;
  p.row_lse = out + 1;
  p.col_lse = out + 1 + p.n;
  p.diag = out + 1 + 2 * p.n;
  p.row_max = out + 1 + 3 * p.n;
  p.col_max = out + 1 + 4 * p.n;
}

/// Backward: both input gradients and the temperature gradient, recomputing the logit tiles from
/// the stored log-sum-exps.
struct BackwardParams {
  const void* image = nullptr;
  const void* text = nullptr;
  const float* temperature = nullptr;  ///< device scalar tau
  const float* grad_loss = nullptr;    ///< device scalar g (upstream gradient of the loss)
  const float* row_lse = nullptr;      ///< [n] from the forward
  const float* col_lse = nullptr;      ///< [n] from the forward
  int64_t n = 0;
  int64_t d = 0;
  float image_to_text_weight = 0.75f;
  ScalarKind dtype = ScalarKind::kFloat32;

  void* grad_image = nullptr;         ///< [n, d] of `dtype`: dS B / tau
  void* grad_text = nullptr;          ///< [n, d] of `dtype`: dS^T A / tau
  float* grad_temperature = nullptr;  ///< device scalar: -sum_ij dS_ij S_ij / tau

  void* workspace = nullptr;  ///< device scratch of backward_workspace_bytes(n, dtype) bytes
  size_t workspace_bytes = 0;
};

/// Scratch the forward needs (per-tile partial log-sum-exp states and per-block loss partials).
size_t forward_workspace_bytes(int64_t n, ScalarKind dtype);
/// Scratch the backward needs (per-block partial sums of the temperature gradient).
size_t backward_workspace_bytes(int64_t n, ScalarKind dtype);

}  // namespace convirt::kernels::infonce
