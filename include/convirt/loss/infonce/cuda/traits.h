#pragma once
// Compile-time traits of the fused InfoNCE kernels: tile shapes per element type and the warp-level
// tensor-core operations (mma.sync fragments, whose register layouts are those of the PTX ISA for
// m16n8k16 and m16n8k8). CUDA only: included by kernel.cuh, which src/loss/infonce/cuda/kernels.cu
// compiles.

#include <convirt/loss/infonce/cuda/platform.h>

#include <cstdint>

namespace convirt::kernels::infonce {

/// Tile shape of the forward: each block owns kRows image rows and sweeps kCols-wide column tiles,
/// streaming the embedding dimension kBlockK at a time. kWarpsM x kWarpsN warps split the tile.
template <int kRows_, int kCols_, int kBlockK_, int kWarpsM_, int kWarpsN_>
struct ForwardTile {
  static constexpr int kRows = kRows_;
  static constexpr int kCols = kCols_;
  static constexpr int kBlockK = kBlockK_;
  static constexpr int kWarpsM = kWarpsM_;
  static constexpr int kWarpsN = kWarpsN_;
  static constexpr int kThreads = 32 * kWarpsM * kWarpsN;
  static constexpr int kWarpRows = kRows / kWarpsM;
  static constexpr int kWarpCols = kCols / kWarpsN;
  static constexpr int kFragsM = kWarpRows / 16;
  static constexpr int kFragsN = kWarpCols / 8;
  // The diagonal S_ii must lie in exactly one tile, at the same local row and column.
  static_assert(kRows == kCols, "forward tiles must be square");
  static_assert(kWarpRows % 16 == 0 && kWarpCols % 8 == 0,
                "warp tile must be a multiple of 16 x 8");
};

/// Tile shape of the backward: a block owns kRows rows of the gradient and kChunk of its columns
/// (embedding dimensions); it sweeps kCols-wide tiles of the other side, recomputing S over the
/// full embedding (kBlockK at a time), turning it into dS and accumulating dS x other[:, chunk].
template <int kRows_, int kCols_, int kBlockK_, int kChunk_, int kWarpsM_, int kWarpsN_>
struct BackwardTile {
  static constexpr int kRows = kRows_;
  static constexpr int kCols = kCols_;
  static constexpr int kBlockK = kBlockK_;
  static constexpr int kChunk = kChunk_;
  static constexpr int kWarpsM = kWarpsM_;
  static constexpr int kWarpsN = kWarpsN_;
  static constexpr int kThreads = 32 * kWarpsM * kWarpsN;
  // GEMM 1 (S tile, kRows x kCols) and GEMM 2 (gradient chunk, kRows x kChunk) share the warp grid.
  static constexpr int kWarpRows = kRows / kWarpsM;
  static constexpr int kFragsM = kWarpRows / 16;
  static constexpr int kWarpCols1 = kCols / kWarpsN;
  static constexpr int kFragsN1 = kWarpCols1 / 8;
  static constexpr int kWarpCols2 = kChunk / kWarpsN;
  static constexpr int kFragsN2 = kWarpCols2 / 8;
  static_assert(kRows == kCols, "backward tiles must be square (diagonal bookkeeping)");
  static_assert(kWarpRows % 16 == 0 && kWarpCols1 % 8 == 0 && kWarpCols2 % 8 == 0,
                "warp tiles must be multiples of 16 x 8");
};

/// Per element type: raw storage word, MMA depth, tiles. fp16/bf16 use m16n8k16; fp32 uses m16n8k8
/// on tf32 operands split in a high and a low part (3xTF32), which keeps fp32-level accuracy.
template <typename T>
struct ElementTraits;

template <>
struct ElementTraits<__nv_bfloat16> {
  using Storage = uint16_t;
  static constexpr int kMmaK = 16;
  using Forward = ForwardTile<128, 128, 32, 2, 4>;
  using Backward = BackwardTile<64, 64, 32, 256, 2, 4>;
  __device__ static Storage from_float(float x) {
    return __bfloat16_as_ushort(__float2bfloat16_rn(x));
  }
};

template <>
struct ElementTraits<__half> {
  using Storage = uint16_t;
  static constexpr int kMmaK = 16;
  using Forward = ForwardTile<128, 128, 32, 2, 4>;
  using Backward = BackwardTile<64, 64, 32, 256, 2, 4>;
  __device__ static Storage from_float(float x) { return __half_as_ushort(__float2half_rn(x)); }
};

template <>
struct ElementTraits<float> {
  using Storage = float;
  static constexpr int kMmaK = 8;
  // Half the k-depth of the 16-bit tiles: same shared-memory bytes per stage.
  using Forward = ForwardTile<128, 128, 16, 2, 4>;
  using Backward = BackwardTile<64, 64, 16, 256, 2, 4>;
  __device__ static Storage from_float(float x) { return x; }
};

namespace detail {

/// Lane coordinates inside an MMA fragment: g = lane / 4 ("group"), t = lane % 4.
struct Lane {
  int g;
  int t;
  __device__ explicit Lane(int lane) : g(lane >> 2), t(lane & 3) {}
};

__device__ __forceinline__ uint32_t load_u32(const uint16_t* p) {
  return *reinterpret_cast<const uint32_t*>(p);
}

__device__ __forceinline__ uint32_t pack_u16(uint16_t lo, uint16_t hi) {
  return static_cast<uint32_t>(lo) | (static_cast<uint32_t>(hi) << 16);
}

__device__ __forceinline__ uint32_t to_tf32(float x) {
#if defined(CONVIRT_CUDA_EMULATE)
  return ::convirt::cuda_emulator::cvt_rna_tf32(x);
#else
  uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
  return r;
#endif
}

}  // namespace detail

/// Warp-level MMA on 16-bit operands (m16n8k16, fp32 accumulators). Shared memory holds raw 16-bit
/// words; fragments are read with 32-bit loads where two k-consecutive elements are adjacent.
template <typename T>
struct Mma16 {
  using Storage = uint16_t;
  struct FragA {
    uint32_t r[4];
  };
  struct FragB {
    uint32_t r[2];
  };

  /// A (16 x 16, row-major in smem: s[m * ld + k]) at (m0, k0).
  __device__ static FragA load_a(const Storage* s, int ld, int m0, int k0, detail::Lane l) {
    const Storage* p0 = s + (m0 + l.g) * ld + k0 + 2 * l.t;
    const Storage* p1 = p0 + 8 * ld;
    return {{detail::load_u32(p0), detail::load_u32(p1), detail::load_u32(p0 + 8),
             detail::load_u32(p1 + 8)}};
  }
  /// B (16 x 8) with B[k][n] = s[n * ld + k] (the other side's rows, k along the embedding).
  __device__ static FragB load_b_nk(const Storage* s, int ld, int n0, int k0, detail::Lane l) {
    const Storage* p = s + (n0 + l.g) * ld + k0 + 2 * l.t;
    return {{detail::load_u32(p), detail::load_u32(p + 8)}};
  }
  /// B (16 x 8) with B[k][n] = s[k * ld + n] (row-major, k along the rows).
  __device__ static FragB load_b_kn(const Storage* s, int ld, int k0, int n0, detail::Lane l) {
    const Storage* p = s + (k0 + 2 * l.t) * ld + n0 + l.g;
    return {{detail::pack_u16(p[0], p[ld]), detail::pack_u16(p[8 * ld], p[9 * ld])}};
  }
  __device__ static void mma(float (&c)[4], const FragA& a, const FragB& b);
};

template <>
__device__ __forceinline__ void Mma16<__nv_bfloat16>::mma(float (&c)[4], const FragA& a,
                                                          const FragB& b) {
#if defined(CONVIRT_CUDA_EMULATE)
  ::convirt::cuda_emulator::mma_m16n8k16_bf16(c, a.r, b.r);
#else
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a.r[0]), "r"(a.r[1]), "r"(a.r[2]), "r"(a.r[3]), "r"(b.r[0]), "r"(b.r[1]));
#endif
}

template <>
__device__ __forceinline__ void Mma16<__half>::mma(float (&c)[4], const FragA& a, const FragB& b) {
#if defined(CONVIRT_CUDA_EMULATE)
  ::convirt::cuda_emulator::mma_m16n8k16_f16(c, a.r, b.r);
#else
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a.r[0]), "r"(a.r[1]), "r"(a.r[2]), "r"(a.r[3]), "r"(b.r[0]), "r"(b.r[1]));
#endif
}

/// Warp-level 3xTF32 MMA on fp32 operands (m16n8k8): x = hi + lo with hi = tf32(x), lo = tf32(x -
/// hi); a b ~= hi_a hi_b + hi_a lo_b + lo_a hi_b (the lo_a lo_b term is below fp32 rounding).
struct MmaTf32x3 {
  using Storage = float;
  struct FragA {
    uint32_t hi[4];
    uint32_t lo[4];
  };
  struct FragB {
    uint32_t hi[2];
    uint32_t lo[2];
  };

  template <int kN>
  __device__ static void split(const float (&x)[kN], uint32_t (&hi)[kN], uint32_t (&lo)[kN]) {
#pragma unroll
    for (int i = 0; i < kN; ++i) {
      hi[i] = detail::to_tf32(x[i]);
      lo[i] = detail::to_tf32(x[i] - __uint_as_float(hi[i]));
    }
  }
  __device__ static FragA load_a(const Storage* s, int ld, int m0, int k0, detail::Lane l) {
    const Storage* p0 = s + (m0 + l.g) * ld + k0 + l.t;
    const Storage* p1 = p0 + 8 * ld;
    const float x[4] = {p0[0], p1[0], p0[4], p1[4]};
    FragA f;
    split(x, f.hi, f.lo);
    return f;
  }
  __device__ static FragB load_b_nk(const Storage* s, int ld, int n0, int k0, detail::Lane l) {
    const Storage* p = s + (n0 + l.g) * ld + k0 + l.t;
    const float x[2] = {p[0], p[4]};
    FragB f;
    split(x, f.hi, f.lo);
    return f;
  }
  __device__ static FragB load_b_kn(const Storage* s, int ld, int k0, int n0, detail::Lane l) {
    const Storage* p = s + (k0 + l.t) * ld + n0 + l.g;
    const float x[2] = {p[0], p[4 * ld]};
    FragB f;
    split(x, f.hi, f.lo);
    return f;
  }
  __device__ static void mma1(float (&c)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
#if defined(CONVIRT_CUDA_EMULATE)
    ::convirt::cuda_emulator::mma_m16n8k8_tf32(c, a, b);
#else
    asm volatile(
        "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
  }
  // Small terms first so they are not absorbed before the large one is added.
  __device__ static void mma(float (&c)[4], const FragA& a, const FragB& b) {
    mma1(c, a.lo, b.hi);
    mma1(c, a.hi, b.lo);
    mma1(c, a.hi, b.hi);
  }
};

/// The MMA used for element type T.
template <typename T>
struct MmaFor {
  using type = Mma16<T>;
};
template <>
struct MmaFor<float> {
  using type = MmaTf32x3;
};

}  // namespace convirt::kernels::infonce
