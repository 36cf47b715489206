#pragma once
// The fine-tuning protocol (paper section 6): the head is warmed up for 200 steps at lr 1e-3 with
// the encoder frozen, then the whole network trains with the classifier recipe.

#include <convirt/eval/encoder.h>
#include <convirt/eval/protocol.h>
#include <convirt/eval/streamed_set.h>

#include <functional>

namespace convirt::eval {

/// An augmentation of a training batch: (images, generator) -> images.
using AugmentFn = std::function<torch::Tensor(const torch::Tensor&, at::Generator&)>;

/// Fine-tuning options: the classifier recipe plus the warm-up and an augmentation hook.
///
/// Example:
///   auto opts = convirt::eval::FinetuneOptions(
///       convirt::eval::ClassifierOptions(convirt::eval::ClassificationTask::kMultiClass)
///           .learning_rate(1e-3)).warmup_steps(200);
struct FinetuneOptions {
  explicit FinetuneOptions(ClassifierOptions classifier = ClassifierOptions())
      : classifier_(std::move(classifier)) {}
  TORCH_ARG(ClassifierOptions, classifier);
  /// Head-only steps before the encoder is unfrozen. Paper: 200.
  TORCH_ARG(int64_t, warmup_steps) = 200;
  /// Learning rate of the warm-up. Paper: 1e-3.
  TORCH_ARG(double, warmup_learning_rate) = 1e-3;
  /// Applied to each training batch of images (after it is moved to `device`); gets the protocol's
  /// generator so augmentations are reproducible for a seed. Empty = no augmentation.
  TORCH_ARG(AugmentFn, augment) = nullptr;
  /// Device batches are moved to; must be where the encoder's parameters live. Default CPU.
  TORCH_ARG(torch::Device, device) = torch::Device(torch::kCPU);
};

/// Fine-tunes `encoder` + dropout + linear head on `train` (images in `inputs`), selects the epoch
/// with the best validation metric (encoder and head restored to that state on return) and reports
/// it on `test`. Warm-up steps count towards options.classifier().max_steps().
///
/// Example:
///   auto r = convirt::eval::finetune(convirt::eval::make_encoder(resnet, 2048), train, val, test,
///                                    convirt::eval::FinetuneOptions().warmup_steps(200));
ClassifierResult finetune(const Encoder& encoder, const LabeledSet& train, const LabeledSet& val,
                          const LabeledSet& test,
                          const FinetuneOptions& options = FinetuneOptions());

/// The same protocol on splits whose images are read batch by batch (datasets that do not fit in
/// memory). It draws the same shuffles, dropout masks and augmentations from the same generator as
/// the in-memory overload, so when `read` delivers the rows that indexing the in-memory tensor
/// would, both overloads return the same result.
///
/// Example:
///   auto r = convirt::eval::finetune(encoder, convirt::eval::stream_from_memory(train),
///                                    convirt::eval::stream_from_memory(val),
///                                    convirt::eval::stream_from_memory(test));
ClassifierResult finetune(const Encoder& encoder, const StreamedSet& train, const StreamedSet& val,
                          const StreamedSet& test,
                          const FinetuneOptions& options = FinetuneOptions());

}  // namespace convirt::eval
