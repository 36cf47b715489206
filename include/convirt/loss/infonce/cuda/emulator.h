#pragma once
// A warp-level CUDA emulator for the fused InfoNCE kernels, so that CPU-only CI runs them (compiled
// as host C++ with CONVIRT_CUDA_EMULATE; see docs/cuda_kernel.md, "Emulator"). Included through
// <convirt/loss/infonce/cuda/platform.h> only; nvcc never sees this file.
//
// What is real: every CUDA thread is a fiber with its own stack; __syncthreads is a barrier across
// the block's fibers; __shfl_xor_sync and mma.sync are warp collectives (all 32 lanes arrive, then
// the operation reads every lane's registers), and mma.sync places its operands by the PTX ISA's
// fragment tables (written here from the ISA, not from the kernel's loaders). Dynamic shared memory
// is allocated at exactly its size (so ASan catches overruns) and filled with NaN at every block
// start; device memory is a host allocation of exactly the requested bytes. Blocks run one after
// the other, their threads in index order between synchronisation points (reversed in every other
// block). A deadlock (a barrier or collective that not every thread reaches) or a divergent
// collective ends the program with a report.
//
// Not emulated: memory-ordering races inside a warp (fibers of a warp run one at a time between
// collectives), static __shared__ arrays are not poisoned, and timings mean nothing.

#include <string.h>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <tuple>

// ---------------------------------------------------------------------------------------------
// Qualifiers and built-in types.

#define __host__
#define __device__
#define __global__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) alignas(n)
// Blocks run one after the other, so one function-local static per kernel is the block's array.
#define __shared__ static

struct alignas(16) uint4 {
  unsigned int x, y, z, w;
};
struct alignas(8) float2 {
  float x, y;
};
inline float2 make_float2(float x, float y) {
  return {x, y};
}
struct uint3 {
  unsigned int x, y, z;
};
struct dim3 {
  unsigned int x, y, z;
  constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1)
      : x(vx), y(vy), z(vz) {}
};

/// IEEE binary16 and bfloat16 storage; conversions round to nearest even, as the device's _rn
/// intrinsics do.
struct __half {
  uint16_t bits;
};
struct __nv_bfloat16 {
  uint16_t bits;
};

namespace convirt::cuda_emulator {

uint16_t float_to_half_bits(float x);
float half_bits_to_float(uint16_t h);
uint16_t float_to_bfloat16_bits(float x);
float bfloat16_bits_to_float(uint16_t b);

/// Coordinates of the running fiber (threadIdx and friends read these).
struct ThreadCoords {
  uint3 thread_idx;
  uint3 block_idx;
  dim3 block_dim;
  dim3 grid_dim;
};
extern const ThreadCoords* g_current_coords;

/// Operation counts since the last reset_counters() (what the kernels did, not how fast).
struct Counters {
  uint64_t mma_ops = 0;           ///< warp-level mma.sync instructions
  uint64_t mma_flops = 0;         ///< 2 m n k per mma.sync
  uint64_t exps = 0;              ///< __expf calls (per thread)
  uint64_t ldg_bytes = 0;         ///< bytes read through __ldg
  uint64_t shuffles = 0;          ///< warp-level shuffles
  uint64_t barriers = 0;          ///< block-level __syncthreads
  uint64_t blocks = 0;            ///< thread blocks run
  uint64_t memcpy_h2d_bytes = 0;  ///< cudaMemcpy host to device
  uint64_t memcpy_d2h_bytes = 0;  ///< cudaMemcpy device to host
};
Counters& counters();
void reset_counters();

// Device-side operations (called by the running fiber).
void syncthreads();
float shfl_xor(unsigned int mask, float v, int lane_mask, int width);
/// mma.sync.aligned.m16n8k16.row.col.f32.{bf16,f16}.{bf16,f16}.f32, d = a b + c in place.
void mma_m16n8k16_bf16(float (&c)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]);
void mma_m16n8k16_f16(float (&c)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]);
/// mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32.
void mma_m16n8k8_tf32(float (&c)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]);
/// cvt.rna.tf32.f32: round to 10 mantissa bits, ties away from zero.
uint32_t cvt_rna_tf32(float x);

/// Runs `body` once per thread of every block of the grid (blocks in order, x fastest), with
/// `smem_bytes` of dynamic shared memory per block. Returns false (and runs nothing) for a launch
/// the device would reject.
bool run_grid(const void* kernel, dim3 grid, dim3 block, size_t smem_bytes,
              const std::function<void()>& body);
/// The running block's dynamic shared memory.
unsigned char* dynamic_smem();

}  // namespace convirt::cuda_emulator

#define threadIdx (::convirt::cuda_emulator::g_current_coords->thread_idx)
#define blockIdx (::convirt::cuda_emulator::g_current_coords->block_idx)
#define blockDim (::convirt::cuda_emulator::g_current_coords->block_dim)
#define gridDim (::convirt::cuda_emulator::g_current_coords->grid_dim)

inline void __syncthreads() {
  ::convirt::cuda_emulator::syncthreads();
}
inline float __shfl_xor_sync(unsigned int mask, float v, int lane_mask, int width = 32) {
  return ::convirt::cuda_emulator::shfl_xor(mask, v, lane_mask, width);
}
template <typename T>
inline T __ldg(const T* p) {
  ::convirt::cuda_emulator::counters().ldg_bytes += sizeof(T);
  return *p;
}
/// The device's __expf is ex2.approx(x * log2(e)) with the product rounded to fp32; ex2.approx's
/// own error (~2 ulp) is below what the tests resolve.
inline float __expf(float x) {
  ++::convirt::cuda_emulator::counters().exps;
  return std::exp2(x * 1.44269504088896340736f);
}
inline float __uint_as_float(unsigned int u) {
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
}
inline unsigned int __float_as_uint(float f) {
  unsigned int u;
  std::memcpy(&u, &f, sizeof(u));
  return u;
}

inline __half __float2half_rn(float x) {
  return {::convirt::cuda_emulator::float_to_half_bits(x)};
}
inline float __half2float(__half h) {
  return ::convirt::cuda_emulator::half_bits_to_float(h.bits);
}
inline unsigned short __half_as_ushort(__half h) {
  return h.bits;
}
inline __half __ushort_as_half(unsigned short v) {
  return {v};
}
inline __nv_bfloat16 __float2bfloat16_rn(float x) {
  return {::convirt::cuda_emulator::float_to_bfloat16_bits(x)};
}
inline float __bfloat162float(__nv_bfloat16 b) {
  return ::convirt::cuda_emulator::bfloat16_bits_to_float(b.bits);
}
inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 b) {
  return b.bits;
}
inline __nv_bfloat16 __ushort_as_bfloat16(unsigned short v) {
  return {v};
}

// ---------------------------------------------------------------------------------------------
// The runtime API the launchers and the standalone test use.

enum cudaError_t : int {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
};
struct CUstream_st;
using cudaStream_t = CUstream_st*;
enum cudaMemcpyKind : int {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
};
enum cudaFuncAttribute : int { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };
struct cudaDeviceProp {
  char name[256];
  int major;
  int minor;
};

namespace convirt::cuda_emulator {
cudaError_t func_set_attribute(const void* kernel, cudaFuncAttribute attr, int value);
void set_last_error(cudaError_t err);
}  // namespace convirt::cuda_emulator

cudaError_t cudaGetLastError();
const char* cudaGetErrorName(cudaError_t err);
const char* cudaGetErrorString(cudaError_t err);
cudaError_t cudaMalloc(void** ptr, size_t bytes);
cudaError_t cudaFree(void* ptr);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemset(void* ptr, int value, size_t bytes);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
template <typename T>
cudaError_t cudaMalloc(T** ptr, size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(ptr), bytes);
}
template <typename... Args>
cudaError_t cudaFuncSetAttribute(void (*kernel)(Args...), cudaFuncAttribute attr, int value) {
  return ::convirt::cuda_emulator::func_set_attribute(reinterpret_cast<const void*>(kernel), attr,
                                                      value);
}

namespace convirt::cuda_emulator {

/// kernel<<<grid, block, smem, stream>>>(args...): the launch configuration, then the call.
template <typename... Params>
struct Launch {
  void (*kernel)(Params...);
  dim3 grid;
  dim3 block;
  size_t smem;
  template <typename... Args>
  void operator()(Args&&... args) const {
    // Kernel parameters are copied once at the launch, as the device copies them to its parameter
    // space; every thread reads the same copy.
    const std::function<void()> body = [kernel = kernel,
                                        params = std::tuple<Params...>(args...)]() {
      std::apply(kernel, params);
    };
    if (!run_grid(reinterpret_cast<const void*>(kernel), grid, block, smem, body)) {
      set_last_error(cudaErrorInvalidConfiguration);
    }
  }
};
template <typename... Params>
Launch<Params...> launch(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem,
                         cudaStream_t /*stream*/) {
  return {kernel, grid, block, smem};
}

}  // namespace convirt::cuda_emulator
