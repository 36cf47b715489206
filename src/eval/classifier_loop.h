#pragma once
// The one training loop behind both classification protocols (not installed): the linear protocol
// is the loop with an identity "encoder" on precomputed features and no warm-up; fine-tuning runs
// the encoder, in memory or streamed through BatchReaders.

#include <convirt/core/check.h>
#include <convirt/eval/encoder.h>
#include <convirt/eval/finetune.h>
#include <convirt/eval/protocol.h>
#include <convirt/eval/streamed_set.h>

#include <ATen/Parallel.h>

#include <vector>

namespace convirt::eval::detail {

using convirt::detail::shape_str;

// Sets the intra-op thread count for a scope (0 = unchanged) and restores it.
class ThreadScope {
 public:
  explicit ThreadScope(int threads) : previous_(at::get_num_threads()) {
    CONVIRT_CHECK_VALUE(threads >= 0, "num_threads must be >= 0 (0 = unchanged), got ", threads);
    if (threads > 0 && threads != previous_) {
      at::set_num_threads(threads);
      changed_ = true;
    }
  }
  ~ThreadScope() {
    if (changed_) at::set_num_threads(previous_);
  }
  ThreadScope(const ThreadScope&) = delete;
  ThreadScope& operator=(const ThreadScope&) = delete;

 private:
  int previous_;
  bool changed_ = false;
};

/// The checks of a split's targets, mask and groups against its number of examples `n`
/// (protocol.cpp).
void check_targets(const LabeledSet& set, ClassificationTask task, const std::string& name,
                   int64_t n);

/// Trains a classifier head (and, with an encoder, the encoder) on `train`, selects on `val`,
/// scores `test`. `readers` empty: the splits hold their inputs; otherwise readers[0..2] read
/// train, val and test batch by batch and the splits carry only targets, mask and groups.
ClassifierResult run_classifier_loop(const Encoder* encoder, const LabeledSet& train,
                                     const LabeledSet& val, const LabeledSet& test,
                                     const ClassifierOptions& options, torch::Device device,
                                     AugmentFn augment, std::vector<BatchReader> readers,
                                     int64_t warmup_steps, double warmup_lr);

}  // namespace convirt::eval::detail
