#pragma once
// Where a checkpoint's vocabulary is found (internal to the pipeline). Every command that encodes
// text with a saved model looks it up here, so there is one rule to change when checkpoints come to
// carry their own vocabulary.

#include <string>

namespace convirt::pipeline::detail {

/// `vocab` when given (it must be a file), else the vocab.txt beside the checkpoint `model_path` or
/// in the folder above it (where `convirt pretrain` and `convirt reproduce` write it). A ValueError
/// starting "vocab must name the model's vocab.txt" otherwise.
std::string find_model_vocab(const std::string& vocab, const std::string& model_path);

}  // namespace convirt::pipeline::detail
