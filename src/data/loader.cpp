#include <convirt/core/check.h>
#include <convirt/data/loader.h>

#include <numeric>

#include "common.h"

namespace convirt::data {

Loader::Loader(std::shared_ptr<const Dataset> dataset, LoaderOptions options)
    : dataset_(std::move(dataset)), options_(std::move(options)) {
  CONVIRT_CHECK_VALUE(dataset_ != nullptr, "Loader: dataset must not be null");
  CONVIRT_CHECK_VALUE(options_.batch_size() >= 1, "Loader: batch_size must be >= 1, got ",
                      options_.batch_size());
  CONVIRT_CHECK_VALUE(options_.workers() >= 0, "Loader: workers must be >= 0, got ",
                      options_.workers());
  CONVIRT_CHECK_VALUE(options_.prefetch() >= 1, "Loader: prefetch must be >= 1, got ",
                      options_.prefetch());
  CONVIRT_CHECK_VALUE(options_.world_size() >= 1, "Loader: world_size must be >= 1, got ",
                      options_.world_size());
  CONVIRT_CHECK_VALUE(options_.rank() >= 0 && options_.rank() < options_.world_size(),
                      "Loader: rank must be in [0, world_size = ", options_.world_size(), "), got ",
                      options_.rank());
  const int64_t n = dataset_->size();
  const int64_t w = options_.world_size();
  // As torch's DistributedSampler: every rank gets the same number of samples, by dropping the tail
  // (drop_last) or wrapping around to pad it.
  per_rank_ = options_.drop_last() ? n / w : (n + w - 1) / w;
  if (n == 0) per_rank_ = 0;
  const int64_t b = options_.batch_size();
  steps_per_epoch_ = options_.drop_last() ? per_rank_ / b : (per_rank_ + b - 1) / b;
  start();
}

Loader::~Loader() {
  stop();
}

uint64_t Loader::sample_seed(uint64_t seed, int64_t epoch, int64_t index) {
  return detail::mix64(detail::mix64(seed, static_cast<uint64_t>(epoch)),
                       static_cast<uint64_t>(index));
}

std::vector<int64_t> Loader::epoch_indices(int64_t epoch) const {
  const int64_t n = dataset_->size();
  std::vector<int64_t> perm(static_cast<size_t>(n));
  std::iota(perm.begin(), perm.end(), 0);
  if (options_.shuffle()) {
    // Fisher-Yates driven by the platform-independent mixer, so the order is the same everywhere.
    uint64_t state =
        detail::mix64(options_.seed() ^ 0x5EED5EED5EEDULL, static_cast<uint64_t>(epoch));
    for (int64_t i = n - 1; i > 0; --i) {
      state = detail::mix64(state);
      auto j = static_cast<int64_t>(detail::bounded(state, static_cast<uint64_t>(i + 1)));
      std::swap(perm[static_cast<size_t>(i)], perm[static_cast<size_t>(j)]);
    }
  }
  std::vector<int64_t> mine;
  mine.reserve(static_cast<size_t>(per_rank_));
  const int64_t w = options_.world_size();
  for (int64_t k = 0; k < per_rank_; ++k) {
    mine.push_back(perm[static_cast<size_t>((options_.rank() + k * w) % n)]);
  }
  return mine;
}

Batch Loader::build(int64_t step) const {
  const int64_t b = options_.batch_size();
  const int64_t begin = step * b;
  const int64_t end = std::min<int64_t>(begin + b, static_cast<int64_t>(order_.size()));
  std::vector<Example> examples;
  examples.reserve(static_cast<size_t>(end - begin));
  for (int64_t k = begin; k < end; ++k) {
    const int64_t index = order_[static_cast<size_t>(k)];
    try {
      examples.push_back(dataset_->get(index, sample_seed(options_.seed(), epoch_, index)));
    } catch (const BadSampleError& e) {
      std::lock_guard<std::mutex> lock(bad_mutex_);
      if (bad_indices_.insert(index).second) bad_.record({index, e.path(), e.reason()});
    }
  }
  Batch batch = collate(std::move(examples));
  batch.epoch = epoch_;
  batch.step = step;
  return batch;
}

void Loader::worker_loop() {
  for (;;) {
    int64_t step;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [&] {
        return stopping_ ||
               (next_build_ < steps_per_epoch_ && next_build_ < step_ + options_.prefetch());
      });
      if (stopping_) return;
      step = next_build_++;
    }
    Result r;
    try {
      r.batch = build(step);
    } catch (...) {
      r.error = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ready_.emplace(step, std::move(r));
    }
    cv_.notify_all();
  }
}

void Loader::start() {
  order_ = epoch_indices(epoch_);
  next_build_ = step_;
  ready_.clear();
  stopping_ = false;
  for (int64_t i = 0; i < options_.workers(); ++i) threads_.emplace_back([this] { worker_loop(); });
}

void Loader::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
  ready_.clear();
}

std::optional<Batch> Loader::next() {
  for (;;) {
    int64_t step;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      step = step_;
    }
    if (step >= steps_per_epoch_) {
      set_position({epoch_ + 1, 0});
      return std::nullopt;
    }
    Result r;
    if (threads_.empty()) {
      try {
        r.batch = build(step);
      } catch (...) {
        r.error = std::current_exception();
      }
    } else {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [&] { return ready_.count(step) > 0; });
      r = std::move(ready_[step]);
      ready_.erase(step);
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ++step_;
    }
    cv_.notify_all();
    if (r.error) std::rethrow_exception(r.error);
    bad_.check_threshold(dataset_->size(), options_.max_bad_fraction(), "Loader");
    if (r.batch.size() > 0) return std::move(r.batch);
    // Every sample of this step was bad: move on rather than hand out an empty batch.
  }
}

Batch Loader::next_batch() {
  CONVIRT_CHECK(steps_per_epoch_ > 0, "Loader: the dataset gives no batch per epoch (",
                dataset_->size(), " samples, batch_size ", options_.batch_size(), ", world_size ",
                options_.world_size(), ")");
  for (int attempts = 0;; ++attempts) {
    if (auto b = next()) return std::move(*b);
    CONVIRT_CHECK(attempts < 2, "Loader: two consecutive epochs produced no usable sample");
  }
}

LoaderPosition Loader::position() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return {epoch_, step_};
}

void Loader::set_position(LoaderPosition position) {
  CONVIRT_CHECK_VALUE(
      position.epoch >= 0 && position.step >= 0 && position.step <= steps_per_epoch_,
      "Loader: position must have epoch >= 0 and step in [0, ", steps_per_epoch_, "], got (",
      position.epoch, ", ", position.step, ")");
  stop();
  epoch_ = position.epoch;
  step_ = position.step;
  start();
}

}  // namespace convirt::data
