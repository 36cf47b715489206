#pragma once
// Host entry points of the fused CUDA InfoNCE kernels (compiled once in
// src/loss/infonce/cuda/kernels.cu). Torch-free: usable from the torch glue, the standalone test
// and any CUDA program.
//
// Example:
//   namespace ki = convirt::kernels::infonce;
//   ki::ForwardParams p;
//   p.image = a; p.text = b; p.temperature = tau_dev; p.n = n; p.d = d; p.dtype =
//   ki::ScalarKind::kBFloat16; p.loss = loss; p.row_lse = r; p.col_lse = c; p.diag = dg; p.row_max
//   = rm; p.col_max = cm; p.workspace_bytes = ki::forward_workspace_bytes(n, p.dtype);
//   cudaMalloc(&p.workspace, p.workspace_bytes);
//   cudaError_t err = ki::forward(p, stream);

#include <convirt/loss/infonce/cuda/params.h>

#if defined(CONVIRT_CUDA_EMULATE)
#include <convirt/loss/infonce/cuda/emulator.h>
#else
#include <cuda_runtime_api.h>
#endif

namespace convirt::kernels::infonce {

/// Runs the forward on `stream`. Returns cudaErrorInvalidValue for bad parameters (null pointers,
/// n or d out of range, a workspace that is too small) and otherwise the launch status. n == 0
/// writes a NaN loss (the mean over no pairs), as torch.mean of an empty tensor does.
cudaError_t forward(const ForwardParams& params, cudaStream_t stream);

/// Runs the backward on `stream`; same error convention as forward().
cudaError_t backward(const BackwardParams& params, cudaStream_t stream);

/// The launch geometry, for tests and the docs: tile rows/columns of the forward, and how many
/// column splits (blocks along the columns) it uses for n. It depends only on n and the dtype
/// (never on the device), so results are bit-identical across GPUs of the same architecture as well
/// as run to run.
struct ForwardGeometry {
  int tile_rows;
  int tile_cols;
  int64_t row_blocks;
  int64_t col_tiles;
  int64_t col_splits;
  int64_t tiles_per_split;
};
ForwardGeometry forward_geometry(int64_t n, ScalarKind dtype);

}  // namespace convirt::kernels::infonce
