#pragma once
// The loader: worker threads decode and transform samples into collated batches ahead of the
// consumer, with a fixed bound on batches in memory. The order and content of every batch is a pure
// function of (seed, epoch, step, rank, world_size), whatever the number of workers, so a saved
// position resumes exactly.

#include <convirt/data/sample.h>
#include <torch/arg.h>

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <vector>

namespace convirt::data {

/// Options of Loader.
/// Example:
///   auto opts = convirt::data::LoaderOptions().batch_size(32).workers(2).seed(42);
struct LoaderOptions {
  TORCH_ARG(int64_t, batch_size) = 32;
  /// Reshuffle every epoch (permutation drawn from (seed, epoch)); false keeps dataset order.
  TORCH_ARG(bool, shuffle) = true;
  /// Drop the last incomplete batch (and, when sharding, the tail that does not split evenly).
  TORCH_ARG(bool, drop_last) = false;
  TORCH_ARG(uint64_t, seed) = 0;
  /// Decoding threads; 0 builds each batch in the calling thread inside next().
  TORCH_ARG(int64_t, workers) = 2;
  /// Most batches built ahead of the consumer (ready or being built): the memory bound. Must be
  /// >= 1.
  TORCH_ARG(int64_t, prefetch) = 4;
  /// Sharding: this process takes every world_size-th sample of the epoch's permutation from
  /// `rank`.
  TORCH_ARG(int64_t, rank) = 0;
  TORCH_ARG(int64_t, world_size) = 1;
  /// Fails (RuntimeError listing the bad samples) once more than this fraction of the dataset's
  /// samples turned out bad while loading; < 0 never fails.
  TORCH_ARG(double, max_bad_fraction) = 0.01;
};

/// Where the loader is: the next batch it returns is step `step` of epoch `epoch`.
struct LoaderPosition {
  int64_t epoch = 0;
  int64_t step = 0;
};

/// Batches over a Dataset.
///
/// Samples that throw BadSampleError (corrupt image, missing file) are skipped, so such a batch is
/// smaller; each bad sample is recorded once in bad_samples() with its path and reason.
///
/// Example:
///   convirt::data::Loader loader(dataset, convirt::data::LoaderOptions().batch_size(32).seed(0));
///   while (auto batch = loader.next()) train_step(batch->images, batch->texts);
///   auto pos = loader.position();           // save with the checkpoint
///   loader.set_position(pos);               // ... and resume exactly
class Loader {
 public:
  Loader(std::shared_ptr<const Dataset> dataset, LoaderOptions options = {});
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  /// The next batch of the current epoch, or nullopt when the epoch is over (the position then
  /// moves to the start of the next epoch, so the following call begins it).
  std::optional<Batch> next();
  /// The next batch, moving into the next epoch when one ends (for step-based training loops).
  Batch next_batch();

  LoaderPosition position() const;
  /// Moves to a saved position; the batches that follow are those the original run produced there.
  void set_position(LoaderPosition position);

  /// Batches per epoch on this rank.
  int64_t steps_per_epoch() const { return steps_per_epoch_; }
  /// Samples per epoch on this rank (after sharding; before any bad sample is dropped).
  int64_t samples_per_epoch() const { return per_rank_; }
  /// This rank's sample order for an epoch.
  std::vector<int64_t> epoch_indices(int64_t epoch) const;
  /// The seed sample `index` gets in `epoch`: everything random about it derives from this.
  static uint64_t sample_seed(uint64_t seed, int64_t epoch, int64_t index);

  const BadSampleLog& bad_samples() const { return bad_; }
  const LoaderOptions& options() const { return options_; }
  const std::shared_ptr<const Dataset>& dataset() const { return dataset_; }

 private:
  struct Result {
    Batch batch;
    std::exception_ptr error;
  };
  Batch build(int64_t step) const;
  void start();
  void stop();
  void worker_loop();

  std::shared_ptr<const Dataset> dataset_;
  LoaderOptions options_;
  int64_t per_rank_ = 0;
  int64_t steps_per_epoch_ = 0;

  // Pipeline state for the current epoch (guarded by mutex_).
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  int64_t epoch_ = 0;
  int64_t step_ = 0;        // next step returned to the consumer
  int64_t next_build_ = 0;  // next step a worker will take
  bool stopping_ = false;
  std::vector<int64_t> order_;  // this rank's indices for epoch_
  std::map<int64_t, Result> ready_;
  std::vector<std::thread> threads_;

  mutable BadSampleLog bad_;
  mutable std::mutex bad_mutex_;
  mutable std::set<int64_t> bad_indices_;
};

}  // namespace convirt::data
