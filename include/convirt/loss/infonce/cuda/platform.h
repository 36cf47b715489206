#pragma once
// The CUDA the fused InfoNCE kernels are written against, and the seam that lets CPU-only CI run
// them: under nvcc the toolkit's headers and the plain CUDA spellings below (the device code is
// exactly what it would be without this file); with CONVIRT_CUDA_EMULATE the kernels compile as
// host C++ against the warp-level emulator (<convirt/loss/infonce/cuda/emulator.h>, see
// docs/cuda_kernel.md, "Emulator"). The few spots the emulator cannot reach through ordinary
// functions (inline PTX, dynamic shared memory, launches) go through the macros here or an
// `#if defined(CONVIRT_CUDA_EMULATE)` next to them.

#if defined(CONVIRT_CUDA_EMULATE)

#include <convirt/loss/infonce/cuda/emulator.h>

/// The block's dynamic shared memory as `unsigned char name[]`, 16-byte aligned.
#define CONVIRT_DYNAMIC_SMEM(name) unsigned char* name = ::convirt::cuda_emulator::dynamic_smem()
/// kernel<<<grid, block, smem, stream>>>, written CONVIRT_LAUNCH(kernel, grid, block, smem,
/// stream)(args...).
#define CONVIRT_LAUNCH(kernel, grid, block, smem, stream) \
  ::convirt::cuda_emulator::launch(kernel, grid, block, smem, stream)

#else

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#define CONVIRT_DYNAMIC_SMEM(name) extern __shared__ __align__(16) unsigned char name[]
#define CONVIRT_LAUNCH(kernel, grid, block, smem, stream) kernel<<<grid, block, smem, stream>>>

#endif
