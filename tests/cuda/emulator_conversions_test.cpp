// The emulator's half/bfloat16 conversions (src/loss/infonce/cuda/emulator.cpp) against the CUDA
// toolkit's own host implementations, bit for bit: every 16-bit pattern back to float, and float to
// 16 bits over every 61st bit pattern plus the neighbourhood of every 16-bit value's rounding
// boundaries (ties, subnormals, overflow). Built where the toolkit's headers are (nvcc found). The
// whole 2^32 range also matched when the emulator was written (47 s; pass "all").

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

namespace convirt::cuda_emulator {
uint16_t float_to_half_bits(float x);
float half_bits_to_float(uint16_t h);
uint16_t float_to_bfloat16_bits(float x);
float bfloat16_bits_to_float(uint16_t b);
}  // namespace convirt::cuda_emulator

namespace ce = convirt::cuda_emulator;

namespace {

uint64_t g_checked = 0;
uint64_t g_failures = 0;

bool is_nan_half(uint16_t h) {
  return (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0;
}
bool is_nan_bf16(uint16_t b) {
  return (b & 0x7f80u) == 0x7f80u && (b & 0x7fu) != 0;
}

void check_float(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, 4);
  ++g_checked;
  const uint16_t th = __half_as_ushort(__float2half_rn(f));
  const uint16_t eh = ce::float_to_half_bits(f);
  // NaN payloads may differ; NaN-ness may not.
  if (th != eh && !(is_nan_half(th) && is_nan_half(eh))) {
    if (g_failures++ < 10)
      std::printf("FAIL: half(0x%08x): toolkit 0x%04x, emulator 0x%04x\n", bits, th, eh);
  }
  const uint16_t tb = __bfloat16_as_ushort(__float2bfloat16_rn(f));
  const uint16_t eb = ce::float_to_bfloat16_bits(f);
  if (tb != eb && !(is_nan_bf16(tb) && is_nan_bf16(eb))) {
    if (g_failures++ < 10)
      std::printf("FAIL: bf16(0x%08x): toolkit 0x%04x, emulator 0x%04x\n", bits, tb, eb);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const bool all = argc > 1 && std::string(argv[1]) == "all";
  for (uint32_t h = 0; h < 65536; ++h) {
    const auto v = static_cast<uint16_t>(h);
    const float th = __half2float(__ushort_as_half(v)), eh = ce::half_bits_to_float(v);
    const float tb = __bfloat162float(__ushort_as_bfloat16(v)), eb = ce::bfloat16_bits_to_float(v);
    if (std::memcmp(&th, &eh, 4) != 0 && !(th != th && eh != eh)) ++g_failures;
    if (std::memcmp(&tb, &eb, 4) != 0 && !(tb != tb && eb != eb)) ++g_failures;
    // Around the float image of every 16-bit value: the value, its ties, and their neighbours.
    uint32_t base;
    std::memcpy(&base, &eh, 4);
    for (int64_t delta = -0x1001; delta <= 0x1001; delta += 0x800) {
      for (int64_t e = -1; e <= 1; ++e) check_float(static_cast<uint32_t>(base + delta + e));
    }
    const uint32_t bbase = static_cast<uint32_t>(v) << 16;
    for (int64_t e = -1; e <= 1; ++e) {
      check_float(static_cast<uint32_t>(bbase + 0x8000 + e));
      check_float(static_cast<uint32_t>(bbase + e));
    }
  }
  const uint64_t step = all ? 1 : 61;
  for (uint64_t u = 0; u < (1ull << 32); u += step) check_float(static_cast<uint32_t>(u));
  std::printf("%llu floats checked: %s (%llu mismatches)\n",
              static_cast<unsigned long long>(g_checked), g_failures == 0 ? "passed" : "FAILED",
              static_cast<unsigned long long>(g_failures));
  return g_failures == 0 ? 0 : 1;
}
