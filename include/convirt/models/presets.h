#pragma once
// Named model configurations.
//
// | preset | image encoder | text encoder | heads | tokens | image |
// |---|---|---|---|---|---|
// | paper | ResNet-50, RGB | BERT-base 12x768, max pooling, embeddings + 6 layers frozen |
// 2048->2048->512, 768->768->512 | 128 | 224 | | small | ResNet-18 width 32, 1 channel | BERT
// 2x128, 2 heads, vocab 2048, max pooling, nothing frozen | 256->256->128, 128->128->128 | 64 | 64
// |

#include <convirt/models/config.h>

#include <string>
#include <vector>

namespace convirt::models {

/// The paper's model (section 2 of docs/paper.md).
ModelConfig paper_preset();
/// A model that pretrains in minutes on 2 CPU cores at batch 32 on 64 px grey images. vocab_size
/// should be the size of the vocabulary built from the training corpus.
ModelConfig small_preset(int64_t vocab_size = 2048);
/// "paper" or "small"; anything else is a ValueError listing the names.
ModelConfig preset(const std::string& name);
std::vector<std::string> preset_names();

/// The model config `spec` names, in any of the forms the command line and Python accept: a preset
/// name ("paper", "small"), ModelConfig JSON text (its first non-blank character is '{') or the
/// path of a ModelConfig JSON file (ending in ".json"). `argument` (the caller's option name)
/// starts every error message: a ValueError for an unknown preset (naming it and the known ones) or
/// a file that cannot be read; JSON errors are ModelConfig::from_json's.
///
/// Example:
///   auto a = convirt::models::config_from("small");
///   auto b = convirt::models::config_from(a.to_json());
///   auto c = convirt::models::config_from("configs/my_model.json");
ModelConfig config_from(const std::string& spec, const std::string& argument = "model");
/// True when config_from(spec) reads a preset, i.e. `spec` is neither JSON text nor a .json path.
bool is_preset_spec(const std::string& spec);

}  // namespace convirt::models
