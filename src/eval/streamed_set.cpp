#include <convirt/core/check.h>
#include <convirt/eval/streamed_set.h>

#include <ATen/ATen.h>

namespace convirt::eval {

StreamedSet StreamedSet::select(const torch::Tensor& index) const {
  auto pick = [&](const torch::Tensor& t) {
    return t.defined() ? t.index_select(0, index.to(t.device())) : t;
  };
  StreamedSet out{pick(targets), pick(mask), pick(groups), nullptr};
  auto rows = index.to(at::kCPU).to(at::kLong);
  auto base = read;
  out.read = [rows, base](const std::vector<torch::Tensor>& batches, const BatchConsumer& consume) {
    std::vector<torch::Tensor> mapped;
    mapped.reserve(batches.size());
    for (const auto& b : batches) mapped.push_back(rows.index_select(0, b.to(at::kLong)));
    base(mapped, consume);
  };
  return out;
}

StreamedSet stream_from_memory(const LabeledSet& set) {
  CONVIRT_CHECK_VALUE(set.inputs.defined(), "set.inputs must be a defined tensor");
  auto inputs = set.inputs;
  return StreamedSet{
      set.targets, set.mask, set.groups,
      [inputs](const std::vector<torch::Tensor>& batches, const BatchConsumer& consume) {
        for (const auto& b : batches) {
          if (!consume(inputs.index_select(0, b.to(inputs.device())))) return;
        }
      }};
}

}  // namespace convirt::eval
