#pragma once
// Which part of a global batch or dataset each rank owns. Contiguous blocks in rank order, so that
// concatenating the ranks' shards gives back the global order: the property that makes a k-rank
// step equal to a one-process step on the whole batch.

#include <convirt/core/check.h>

#include <cstdint>

namespace convirt::dist {

/// The half-open range [begin, end) of items that `rank` owns.
struct ShardRange {
  int64_t begin = 0;
  int64_t end = 0;
  int64_t size() const { return end - begin; }
};

/// Splits `total` items into `world_size` contiguous shards whose sizes differ by at most one (the
/// first total % world_size ranks get one more).
///
/// Example:
///   auto r = convirt::dist::shard_range(10, /*rank=*/1, /*world_size=*/3);  // [4, 7)
inline ShardRange shard_range(int64_t total, int64_t rank, int64_t world_size) {
  CONVIRT_CHECK_VALUE(total >= 0, "total must be >= 0, got ", total);
  CONVIRT_CHECK_VALUE(world_size >= 1, "world_size must be >= 1, got ", world_size);
  CONVIRT_CHECK_INDEX(rank >= 0 && rank < world_size, "rank must be in [0, ", world_size, "), got ",
                      rank);
  const int64_t base = total / world_size;
  const int64_t extra = total % world_size;
  const int64_t begin = rank * base + (rank < extra ? rank : extra);
  return {begin, begin + base + (rank < extra ? 1 : 0)};
}

}  // namespace convirt::dist
