#pragma once
// The linear protocol (paper section 6): the encoder is frozen and only a linear head is trained.
// Because the encoder never changes, features are extracted once and the head trains on them, which
// is what makes a 5-seed x 3-fraction table take seconds instead of hours.

#include <convirt/eval/encoder.h>
#include <convirt/eval/protocol.h>

namespace convirt::eval {

/// Trains dropout -> linear on `train.inputs` (features [N, D]) with the classifier recipe, selects
/// the epoch with the best validation metric and reports it on `test`. Deterministic for
/// options.seed() (given the same thread count).
///
/// Example:
///   auto feats = convirt::eval::extract_features(encoder, images);
///   auto r = convirt::eval::train_linear_probe({feats_train, y_train}, {feats_val, y_val},
///                                              {feats_test, y_test},
///                                              convirt::eval::ClassifierOptions().seed(1));
///   std::cout << r.test_metric;
ClassifierResult train_linear_probe(const LabeledSet& train, const LabeledSet& val,
                                    const LabeledSet& test,
                                    const ClassifierOptions& options = ClassifierOptions());

/// Runs the frozen encoder over `images` [N, ...] in batches (eval mode, no gradient) and returns
/// the features [N, D] on CPU as float32. The encoder's training flag is restored afterwards.
///
/// Example:
///   auto feats = convirt::eval::extract_features(convirt::eval::make_encoder(resnet, 2048),
///   images);
torch::Tensor extract_features(const Encoder& encoder, const torch::Tensor& images,
                               int64_t batch_size = 64);

}  // namespace convirt::eval
