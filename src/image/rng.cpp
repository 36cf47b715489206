// The transforms' random generator: xoshiro256** seeded through splitmix64, identical on every
// platform.
#include <convirt/image/rng.h>

#include <convirt/core/check.h>

namespace convirt::image {

// ---------------------------------------------------------------------------------------------------
// Rng

namespace {
uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
inline uint64_t rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}
}  // namespace

Rng::Rng(uint64_t seed) {
  for (auto& s : s_) s = splitmix64(seed);
}

uint64_t Rng::next_u64() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double Rng::uniform(double lo, double hi) {
  const double u = static_cast<double>(next_u64() >> 11) * 0x1.0p-53;
  return lo + (hi - lo) * u;
}

int64_t Rng::randint(int64_t lo, int64_t hi) {
  CONVIRT_CHECK_VALUE(hi > lo, "Rng::randint: hi must be > lo, got [", lo, ", ", hi, ")");
  const uint64_t span = static_cast<uint64_t>(hi - lo);
  // Rejection sampling keeps the draw exactly uniform.
  const uint64_t limit = UINT64_MAX - UINT64_MAX % span;
  uint64_t r;
  do {
    r = next_u64();
  } while (r >= limit);
  return lo + static_cast<int64_t>(r % span);
}

bool Rng::bernoulli(double p) {
  return uniform(0.0, 1.0) < p;
}

void Rng::set_state(const std::array<uint64_t, 4>& state) {
  CONVIRT_CHECK_VALUE(state[0] | state[1] | state[2] | state[3],
                      "Rng::set_state: the all-zero state is invalid for xoshiro256**");
  s_ = state;
}

}  // namespace convirt::image
