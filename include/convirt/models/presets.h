#pragma once
// Named model configurations, kept as JSON files beside the code (src/models/presets/<name>.json,
// compiled into the library at build time): a preset is a config a user can copy, edit and pass
// back as a .json path (config_from).
//
//   paper: ResNet-50 (RGB); BERT-base 12x768, max pooling, embeddings and 6 layers frozen; heads
//          2048->2048->512 and 768->768->512; 128 tokens; 224 px.
//   small: ResNet-18 width 32, 1 channel; BERT 2x128, 2 heads, vocab 2048, max pooling, nothing
//          frozen; heads 256->256->128 and 128->128->128; 64 tokens; 64 px.

#include <convirt/models/config.h>

#include <string>
#include <vector>

namespace convirt::models {

/// The paper's model (section 2 of docs/paper.md): preset("paper").
ModelConfig paper_preset();
/// A model that pretrains in minutes on 2 CPU cores at batch 32 on 64 px grey images. vocab_size
/// should be the size of the vocabulary built from the training corpus: preset("small") with that
/// vocab_size.
ModelConfig small_preset(int64_t vocab_size = 2048);
/// The preset file `name` ("paper", "small"); anything else is a ValueError listing the names.
ModelConfig preset(const std::string& name);
/// The names of the embedded preset files, in the order src/models/CMakeLists.txt lists them.
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
