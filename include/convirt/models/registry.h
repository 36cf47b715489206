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

/// Adds or replaces an image encoder factory. The factory receives the whole config; a user
/// encoder's own options are in config.image_encoder_options() (the text of a JSON object, which
/// must hold "in_channels": ModelConfig::image_channels()). examples/custom_image_encoder.cpp
/// trains, saves, reloads and evaluates one.
///
/// Example:
///   convirt::models::register_image_encoder("tiny_cnn", [](const convirt::models::ModelConfig& c)
///   {
///     auto o = nlohmann::json::parse(c.image_encoder_options());  // {"in_channels": 1, "width":
///     16} return convirt::models::AnyImageEncoder(MyCnn(o["in_channels"], o["width"]));
///   });
void register_image_encoder(const std::string& name, ImageEncoderFactory factory);
void register_text_encoder(const std::string& name, TextEncoderFactory factory);

/// Builds the named encoder for `config`; an unknown name is a ValueError listing the known ones.
/// The encoder options are checked to be JSON objects before the factory sees them.
AnyImageEncoder make_image_encoder(const std::string& name, const ModelConfig& config);
AnyTextEncoder make_text_encoder(const std::string& name, const ModelConfig& config);

std::vector<std::string> image_encoder_names();
std::vector<std::string> text_encoder_names();

}  // namespace convirt::models
