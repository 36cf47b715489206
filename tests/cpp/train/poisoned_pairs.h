#pragma once
// A paired dataset whose images are all NaN, for the trainer's non-finite-loss handling tests.

#include <convirt/data/datasets/paired.h>

#include <torch/torch.h>

#include <limits>
#include <memory>
#include <string>
#include <utility>

namespace convirt::test {

/// Pairs whose images are NaN: every loss computed on them is non-finite.
class PoisonedPairs : public data::Dataset {
 public:
  explicit PoisonedPairs(std::shared_ptr<data::PairedDataset> inner) : inner_(std::move(inner)) {}
  int64_t size() const override { return inner_->size(); }
  data::Example get(int64_t index, uint64_t seed) const override {
    auto ex = inner_->get(index, seed);
    ex.image = torch::full_like(ex.image, std::numeric_limits<float>::quiet_NaN());
    return ex;
  }
  std::string source(int64_t index) const override { return inner_->source(index); }

 private:
  std::shared_ptr<data::PairedDataset> inner_;
};

}  // namespace convirt::test
