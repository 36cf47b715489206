#pragma once
// The random generator the transforms draw from. A transform never touches a global generator: the
// caller owns an Rng (or passes a seed), so the same seed gives the same pixels on every platform,
// thread count and run.

#include <array>
#include <cstdint>

namespace convirt::image {

/// A small, fast, portable random generator (xoshiro256**, seeded through splitmix64). Uniform
/// draws are computed by hand rather than with <random>'s distributions, whose output differs
/// between standard libraries. Example: Rng rng(42); double a = rng.uniform(-20, 20); bool flip =
/// rng.bernoulli(0.5);
class Rng {
 public:
  explicit Rng(uint64_t seed = 0);
  /// The next 64 random bits.
  uint64_t next_u64();
  /// Uniform double in [lo, hi).
  double uniform(double lo, double hi);
  /// Uniform integer in [lo, hi) (hi > lo).
  int64_t randint(int64_t lo, int64_t hi);
  /// True with probability p.
  bool bernoulli(double p);
  /// The full state, for exact resume; set_state(state()) continues the same stream.
  std::array<uint64_t, 4> state() const { return s_; }
  void set_state(const std::array<uint64_t, 4>& state);

 private:
  std::array<uint64_t, 4> s_;
};

}  // namespace convirt::image
