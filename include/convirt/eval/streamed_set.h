#pragma once
// A labelled split whose images stay on disk: the labels (small) are in memory, the images are read
// batch by batch when a protocol asks for them. Fine-tuning on RSNA, CheXpert or MURA at 224 px
// needs 10-600 GB of decoded images; a StreamedSet keeps only the batches being trained on.

#include <convirt/eval/protocol.h>

#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <vector>

namespace convirt::eval {

/// Called once per batch, in order, with the batch's inputs; returns false to stop reading.
using BatchConsumer = std::function<bool(const torch::Tensor& inputs)>;

/// Reads the inputs of the rows `batches[0]`, `batches[1]`, ... (int64 row indices of the split, in
/// that order) and hands each batch to `consume` in order. Implementations may read ahead (a
/// threaded loader) but must deliver exactly the requested rows, so the result is the same as
/// indexing an in-memory tensor.
using BatchReader =
    std::function<void(const std::vector<torch::Tensor>& batches, const BatchConsumer& consume)>;

/// A split read through a BatchReader. `targets`, `mask` and `groups` mean what they mean in a
/// LabeledSet (their `inputs` is what `read` produces).
///
/// Example:
///   convirt::eval::StreamedSet train{labels, {}, {}, [&](const auto& batches, const auto& consume)
///   {
///     for (const auto& rows : batches) if (!consume(load_images(rows))) break;
///   }};
struct StreamedSet {
  torch::Tensor targets;
  torch::Tensor mask = {};
  torch::Tensor groups = {};
  BatchReader read;

  int64_t size() const { return targets.defined() ? targets.size(0) : 0; }
  /// The rows `index` (int64 [K]): labels are selected, reads are mapped to the original rows.
  StreamedSet select(const torch::Tensor& index) const;
};

/// A StreamedSet over an in-memory LabeledSet (reads index `set.inputs`): the reference the
/// streaming path is tested against, and a way to run a streamed protocol on small data.
StreamedSet stream_from_memory(const LabeledSet& set);

}  // namespace convirt::eval
