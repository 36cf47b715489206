#pragma once
// The elementwise loops of the fused CPU InfoNCE path. They are compiled up to three times
// (loops.inc: baseline x86-64, AVX2+FMA, AVX-512), and fused.cpp picks one at run
// time,
// because the exp and log-sum-exp passes are as costly as the GEMMs unless they run on the widest
// vectors the CPU has. No Torch includes: these translation units compile in a second.

#include <convirt/loss/infonce/tile_math.h>

#include <cstdint>

namespace convirt::detail {

template <typename T>
struct InfoNCELoops {
  /// Scales row[0..n) by inv_tau in place; returns (max, sum exp(s - max)) of the scaled row.
  tile_math::LseState<T> (*scale_row_and_reduce)(T* row, int64_t n, T inv_tau);
  /// Merges rows [0, rows) of a scaled panel (row stride n) into the running column states of
  /// columns [c0, c1); scratch holds c1 - c0 values.
  void (*merge_columns)(const T* panel, int64_t rows, int64_t n, int64_t c0, int64_t c1, T* col_max,
                        T* col_sum, T* scratch);
  /// Overwrites a raw (unscaled) panel row with dL/dS (off-diagonal formula; the caller fixes the
  /// diagonal) and returns sum_j dL/dS_j * S_j.
  T(*gradient_row)
  (T* row, const T* col_lse, int64_t n, T row_lse, T inv_tau, tile_math::GradWeights<T> w);
};

/// The loops for the CPU this process runs on, for rows of n values (AVX-512 only for n >= 2048).
const InfoNCELoops<float>& infonce_loops_float(int64_t n);
const InfoNCELoops<double>& infonce_loops_double();

namespace loops_default {
extern const InfoNCELoops<float> kFloat;
extern const InfoNCELoops<double> kDouble;
}  // namespace loops_default
namespace loops_avx2 {
extern const InfoNCELoops<float> kFloat;
}  // namespace loops_avx2
namespace loops_avx512 {
extern const InfoNCELoops<float> kFloat;
}  // namespace loops_avx512

}  // namespace convirt::detail
