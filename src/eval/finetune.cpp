#include <convirt/eval/finetune.h>

#include "classifier_loop.h"

namespace convirt::eval {

ClassifierResult finetune(const Encoder& encoder, const LabeledSet& train, const LabeledSet& val,
                          const LabeledSet& test, const FinetuneOptions& options) {
  CONVIRT_CHECK_VALUE(static_cast<bool>(encoder.forward), "encoder.forward must be set");
  CONVIRT_CHECK_VALUE(options.warmup_steps() >= 0, "warmup_steps must be >= 0, got ",
                      options.warmup_steps());
  detail::ThreadScope threads(options.classifier().num_threads());
  return detail::run_classifier_loop(&encoder, train, val, test, options.classifier(),
                                     options.device(), options.augment(), {},
                                     options.warmup_steps(), options.warmup_learning_rate());
}

ClassifierResult finetune(const Encoder& encoder, const StreamedSet& train, const StreamedSet& val,
                          const StreamedSet& test, const FinetuneOptions& options) {
  CONVIRT_CHECK_VALUE(static_cast<bool>(encoder.forward), "encoder.forward must be set");
  CONVIRT_CHECK_VALUE(options.warmup_steps() >= 0, "warmup_steps must be >= 0, got ",
                      options.warmup_steps());
  detail::ThreadScope threads(options.classifier().num_threads());
  auto labels = [](const StreamedSet& s) {
    return LabeledSet{torch::Tensor(), s.targets, s.mask, s.groups};
  };
  return detail::run_classifier_loop(&encoder, labels(train), labels(val), labels(test),
                                     options.classifier(), options.device(), options.augment(),
                                     {train.read, val.read, test.read}, options.warmup_steps(),
                                     options.warmup_learning_rate());
}

}  // namespace convirt::eval
