// The fused InfoNCE kernels and launchers compiled as host C++ for the warp-level emulator
// (CONVIRT_CUDA_EMULATE; see docs/cuda_kernel.md, "Emulator"): the same source nvcc compiles.
#include "kernels.cu"
