#pragma once
// Everything that defines a ConVIRT model's architecture, as one value that round-trips through
// JSON (stored inside checkpoints, accepted by the command line and Python).

#include <convirt/models/bert.h>
#include <convirt/models/projection_head.h>
#include <convirt/models/resnet.h>

#include <string>

namespace convirt::models {

/// Architecture of a ConVIRT model. Encoder names are looked up in the registry (registry.h).
///
/// Example:
///   auto cfg = convirt::models::preset("small");
///   cfg.projection_dim(64);
///   std::string json = cfg.to_json();
struct ModelConfig {
  /// Registered image encoder: "resnet18", "resnet34", "resnet50", "resnet101" built in.
  TORCH_ARG(std::string, image_encoder) = "resnet50";
  /// ResNet options; the depth is taken from the image encoder's name.
  TORCH_ARG(ResNetOptions, resnet) = ResNetOptions(50);
  /// A registered (user) image encoder's own options: the text of a JSON object, which its
  /// factory reads from the config it receives (registry.h); empty for none. The built-in ResNets
  /// take theirs from `resnet` and ignore this. A user encoder's object must hold "in_channels"
  /// (see image_channels()). It travels in every checkpoint's config, so load_convirt() rebuilds
  /// the same encoder.
  TORCH_ARG(std::string, image_encoder_options) = "";
  /// Registered text encoder: "bert" built in.
  TORCH_ARG(std::string, text_encoder) = "bert";
  TORCH_ARG(BertOptions, bert) = BertOptions();
  /// A registered (user) text encoder's own options, as image_encoder_options; "bert" ignores it.
  TORCH_ARG(std::string, text_encoder_options) = "";
  /// d, the width of v and u (paper 512).
  TORCH_ARG(int64_t, projection_dim) = 512;
  TORCH_ARG(ProjectionKind, head_kind) = ProjectionKind::kMLP;
  /// Hidden widths of the heads; 0 = the encoder's output width.
  TORCH_ARG(int64_t, image_head_hidden) = 0;
  TORCH_ARG(int64_t, text_head_hidden) = 0;
  /// What the data pipeline should feed (recorded with the model so evaluation matches training).
  TORCH_ARG(int64_t, max_length) = 128;
  TORCH_ARG(int64_t, image_size) = 224;
  /// Where the weights started from, as a JSON object {"image": {"path", "sha256", "bytes"},
  /// "text": {...}} (train/initial_weights.h); empty for a random initialisation. Provenance, not
  /// architecture: make_convirt() ignores it, but it travels in every checkpoint's config.
  TORCH_ARG(std::string, initial_weights) = "";

 public:
  /// Channels of the images the image encoder takes, which the data pipelines read images with:
  /// `resnet.in_channels` for the built-in ResNets, image_encoder_options' "in_channels" for any
  /// other encoder (a ValueError when absent or not an integer >= 1).
  int64_t image_channels() const;
  /// True for the image encoder names built into the library ("resnet18", ..., "resnet101").
  static bool is_builtin_image_encoder(const std::string& name);

  /// JSON object with every field (enums as their names). The encoder options appear only when
  /// set, so configs without them keep the exact text they always had.
  std::string to_json() const;
  /// Parses to_json()'s output; absent fields keep their defaults, unknown fields are a ValueError.
  static ModelConfig from_json(const std::string& text);
};

}  // namespace convirt::models
