#pragma once
// Run-time choice of encoders by name, for the command line, config files and Python. Factories
// build the same modules the compile-time ConVIRT<...> template uses, behind
// AnyImageEncoder/AnyTextEncoder. Built in: "resnet18", "resnet34", "resnet50", "resnet101" (image)
// and "bert" (text). Registration is thread-safe; register before building models that use the
// name.

#include <convirt/models/config.h>
#include <convirt/models/encoder.h>

#include <functional>
#include <string>
#include <vector>

namespace convirt::models {

using ImageEncoderFactory = std::function<AnyImageEncoder(const ModelConfig&)>;
using TextEncoderFactory = std::function<AnyTextEncoder(const ModelConfig&)>;

/// Adds or replaces an image encoder factory.
///
/// Example:
///   convirt::models::register_image_encoder("tiny_cnn", [](const convirt::models::ModelConfig&) {
///     return convirt::models::AnyImageEncoder(MyCnn());
///   });
void register_image_encoder(const std::string& name, ImageEncoderFactory factory);
void register_text_encoder(const std::string& name, TextEncoderFactory factory);

/// Builds the named encoder for `config`; an unknown name is a ValueError listing the known ones.
AnyImageEncoder make_image_encoder(const std::string& name, const ModelConfig& config);
AnyTextEncoder make_text_encoder(const std::string& name, const ModelConfig& config);

std::vector<std::string> image_encoder_names();
std::vector<std::string> text_encoder_names();

}  // namespace convirt::models
