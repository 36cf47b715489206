#pragma once
// What the fused CPU InfoNCE path runs on and where its time goes: the benchmark prints these next
// to its timings so that a slow machine can be diagnosed from the table alone.

#include <cstdint>
#include <string>

namespace convirt {

/// Wall time of the fused CPU loss's phases, accumulated over every call since the last
/// reset_infonce_cpu_phase_times(). Work that the loss's threads do in parallel is counted once per
/// thread and divided by the thread count, so the phases add up to (at most) the kernel's wall
/// time.
struct InfoNCECpuPhaseTimes {
  double forward_gemm_ms = 0;   ///< the forward's logit GEMMs (2 N^2 D flops)
  double row_pass_ms = 0;       ///< scaling and per-row log-sum-exp of the logits
  double column_pass_ms = 0;    ///< per-column online log-sum-exp merges
  double backward_gemm_ms = 0;  ///< the backward's recompute GEMMs (2 N^2 D flops)
  double gradient_pass_ms = 0;  ///< exp of the recomputed logits into dL/dS
  double grad_gemm_ms = 0;      ///< dS B and dS^T A (4 N^2 D flops)
  double wait_ms = 0;           ///< threads idle at the phases' barriers (load imbalance)
  double kernel_ms = 0;         ///< wall time inside the forward and backward kernels
  int64_t calls = 0;            ///< forward and backward kernel calls counted
};

/// The phase times accumulated so far (all threads, all calls).
InfoNCECpuPhaseTimes infonce_cpu_phase_times();
void reset_infonce_cpu_phase_times();

/// The instruction set of the elementwise loops this process uses: "avx512", "avx2" or "baseline".
/// CONVIRT_INFONCE_CPU_ISA=avx512|avx2|baseline caps the choice (to compare, or to reproduce
/// results bit for bit across machines); the CPU's own support always bounds it.
std::string infonce_cpu_isa();

/// How many threads the fused CPU loss uses: the larger of LibTorch's intra-op count and the BLAS
/// library's own thread count (the count its GEMMs would use on their own).
int infonce_cpu_threads();

/// The loss's tiling on this machine for n x d embeddings of `element_size`-byte values. Panel: the
/// logits held at once, P rows of n; its budget is half the last-level cache, 8 to 64 MiB (or
/// CONVIRT_INFONCE_PANEL_BYTES), at least 512 rows, panels of equal size. GEMM tile: R x C logits
/// computed by one single-threaded BLAS call, R such that R x d embeddings fill the L2 cache (256
/// to 1024 rows), C = 2 R. None of it depends on the thread count, so neither do the results.
struct InfoNCECpuTiling {
  int64_t panel_rows = 0;
  int64_t tile_rows = 0;
  int64_t tile_cols = 0;
  int64_t panel_budget_bytes = 0;
};
InfoNCECpuTiling infonce_cpu_tiling(int64_t n, int64_t d, int64_t element_size = 4);

}  // namespace convirt
