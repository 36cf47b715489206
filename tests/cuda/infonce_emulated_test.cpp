// The standalone kernel test compiled as host C++ against the warp-level CUDA emulator
// (CONVIRT_CUDA_EMULATE; see docs/cuda_kernel.md, "Emulator").
#include "infonce_standalone_test.cu"
