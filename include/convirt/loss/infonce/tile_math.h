#pragma once
// The arithmetic of the bidirectional InfoNCE loss on one tile of logits, shared by the fused CPU
// path and the CUDA kernel so that CPU CI exercises the exact formulas the GPU runs.
//
// Notation (paper section 1): S_ij = <v_i, u_j> / tau for an N x N batch, r_i = logsumexp_j S_ij
// (row, image->text), c_j = logsumexp_i S_ij (column, text->image), lambda = image_to_text_weight.
//   L = (1/N) sum_i [ lambda (r_i - S_ii) + (1 - lambda) (c_i - S_ii) ]
//   dL/dS_ij = ( lambda (exp(S_ij - r_i) - delta_ij) + (1 - lambda) (exp(S_ij - c_j) - delta_ij) )
//   / N
// Log-sum-exps are accumulated online as (running max m, sum of exp(x - m)) pairs that merge
// associatively, so a row or column can be reduced tile by tile without ever holding the N x N
// matrix.

#include <cmath>
#include <cstdint>
#include <limits>

#if defined(__CUDACC__) || defined(__HIPCC__)
#define CONVIRT_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define CONVIRT_HOST_DEVICE inline
#endif

namespace convirt::tile_math {

template <typename T>
CONVIRT_HOST_DEVICE T neg_inf() {
  return -std::numeric_limits<T>::infinity();
}

// Precise exp/log for both float and double, host and device.
CONVIRT_HOST_DEVICE float exp_(float x) {
  return ::expf(x);
}
CONVIRT_HOST_DEVICE double exp_(double x) {
  return ::exp(x);
}
CONVIRT_HOST_DEVICE float log_(float x) {
  return ::logf(x);
}
CONVIRT_HOST_DEVICE double log_(double x) {
  return ::log(x);
}

/// max that lets a NaN in `a` through (a plain `a > b ? a : b` would drop it), so non-finite inputs
/// give a non-finite loss as PyTorch's formulation does.
template <typename T>
CONVIRT_HOST_DEVICE T nan_max(T a, T b) {
  // Bitwise | rather than || keeps the expression branch-free, so loops over it vectorise.
  return ((a != a) | (a > b)) ? a : b;
}

/// Online log-sum-exp accumulator: sum_k exp(x_k) == sum * exp(max).
template <typename T>
struct LseState {
  T max;
  T sum;
};

template <typename T>
CONVIRT_HOST_DEVICE LseState<T> lse_empty() {
  return {neg_inf<T>(), T(0)};
}

/// The state of the union of two disjoint sets of values. Associative and commutative (up to
/// rounding), so tiles can be merged in any fixed order; a fixed order keeps results bit-identical
/// run to run.
template <typename T>
CONVIRT_HOST_DEVICE LseState<T> lse_merge(LseState<T> a, LseState<T> b) {
  T m = nan_max(a.max, b.max);
  if (m == neg_inf<T>()) return lse_empty<T>();  // both empty: avoid exp(-inf - -inf) = NaN
  return {m, a.sum * exp_(a.max - m) + b.sum * exp_(b.max - m)};
}

/// Adds a block whose maximum is `block_max` and whose sum of exp(x - block_max) is `block_sum`.
template <typename T>
CONVIRT_HOST_DEVICE LseState<T> lse_push_block(LseState<T> s, T block_max, T block_sum) {
  return lse_merge(s, LseState<T>{block_max, block_sum});
}

/// log(sum_k exp(x_k)).
template <typename T>
CONVIRT_HOST_DEVICE T lse_value(LseState<T> s) {
  return s.max + log_(s.sum);
}

/// Per-example loss terms: lambda (r_i - d_i) + (1 - lambda)(c_i - d_i), with d_i = S_ii.
template <typename T>
CONVIRT_HOST_DEVICE T example_loss(T row_lse, T col_lse, T diag, T lambda) {
  return lambda * (row_lse - diag) + (T(1) - lambda) * (col_lse - diag);
}

/// Scale factors for the gradient of one logit: w_row = g * lambda / N, w_col = g * (1 - lambda) /
/// N, where g is the upstream gradient of the scalar loss.
template <typename T>
struct GradWeights {
  T row;
  T col;
};

template <typename T>
CONVIRT_HOST_DEVICE GradWeights<T> grad_weights(T grad_loss, T lambda, int64_t n) {
  T scale = grad_loss / static_cast<T>(n);
  return {scale * lambda, scale * (T(1) - lambda)};
}

/// dL/dS_ij given exp(S_ij - r_i) and exp(S_ij - c_j) (the caller chooses how to evaluate exp).
template <typename T>
CONVIRT_HOST_DEVICE T dlogit_from_probs(T p_row, T p_col, bool diagonal, GradWeights<T> w) {
  T g = w.row * p_row + w.col * p_col;
  return diagonal ? g - (w.row + w.col) : g;
}

/// dL/dS_ij from the logit and the stored row/column log-sum-exps (the backward's recompute step).
template <typename T>
CONVIRT_HOST_DEVICE T dlogit(T s, T row_lse, T col_lse, bool diagonal, GradWeights<T> w) {
  return dlogit_from_probs(exp_(s - row_lse), exp_(s - col_lse), diagonal, w);
}

/// exp for float in a form compilers vectorise (no branches, no library call): Cody-Waite range
/// reduction and a degree-6 polynomial (the Cephes expf coefficients), relative error below 2e-7 on
/// [-87, 88]. Below -87.3 it returns 0 (exp underflows there anyway), above 88 it saturates at
/// exp(88) (the loss only exponentiates logits minus their log-sum-exp, which are <= 0), NaN passes
/// through.
CONVIRT_HOST_DEVICE float fast_exp(float x) {
  // Written with selects and a multiplicative mask rather than early returns: GCC if-converts these
  // and vectorises the loops that call this, for SSE2 and for AVX2 alike.
  const float kHi = 88.0f;
  const float kLo = -87.3365447504f;
  float xc = x < kHi ? x : kHi;
  const float in_range = xc < kLo ? 0.0f : 1.0f;
  xc = xc < kLo ? kLo : xc;
  const float fx = xc * 1.44269504088896341f + 0.5f;
#if defined(__CUDA_ARCH__) || defined(__SSE4_1__) || defined(__aarch64__)
  const float n = floorf(fx);  // a single instruction on these targets
#else
  const float t = static_cast<float>(static_cast<int32_t>(fx));
  const float n = t - (t > fx ? 1.0f : 0.0f);  // floor without a library call
#endif
  const float r = xc - n * 0.693359375f + n * 2.12194440e-4f;
  const float r2 = r * r;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r2 + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  static_assert(sizeof(scale) == sizeof(bits), "float must be 32-bit");
  __builtin_memcpy(&scale, &bits, sizeof(scale));
  const float y = p * scale * in_range;
  return x != x ? x : y;
}

}  // namespace convirt::tile_math
