#pragma once
// The tokenizer that belongs to a model. Token ids are positions in the vocabulary the text encoder
// was trained with, so a model read with any other vocabulary scores quietly lower; every place
// that feeds text to a saved model (retrieval, zero-shot, embeddings, Python) gets its tokenizer
// here, and a vocabulary that is not the model's is refused with both fingerprints.

#include <convirt/models/convirt.h>
#include <convirt/text/wordpiece.h>

#include <memory>
#include <string>

namespace convirt::pipeline {

/// The tokenizer of `model`:
/// - the vocabulary embedded in the model (every model trained by this library carries one); a
///   `vocab_path` given as well must hold the same tokens, else a ValueError naming both
///   fingerprints;
/// - for a model without one (an untrained model, or a file from before vocabularies were
///   embedded): `vocab_path`, else vocab.txt beside `model_path` or in its parent folder (a run
///   folder's layout); it may not hold more tokens than the text encoder's vocab_size.
/// Anything else is a ValueError that says what to pass.
///
/// Example:
///   auto model = convirt::io::load_convirt("runs/demo/model.pt");
///   auto tokenizer = convirt::pipeline::model_tokenizer(*model);
std::shared_ptr<const text::WordPieceTokenizer> model_tokenizer(
    const models::ConVIRTModelImpl& model, const std::string& vocab_path = "",
    const std::string& model_path = "");

}  // namespace convirt::pipeline
