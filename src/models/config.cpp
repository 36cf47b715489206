// ModelConfig: its JSON form (stored in every checkpoint) and what it answers for any encoder.
#include <convirt/core/check.h>
#include <convirt/models/config.h>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace convirt::models {
namespace {

// The options of a user encoder, parsed, with their keys sorted (as from_json stores them), so
// that a config written, read back and written again keeps its text. `field` names them in errors.
nlohmann::ordered_json parse_encoder_options(const char* field, const std::string& text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    CONVIRT_CHECK_VALUE(false, "model config field '", field,
                        "' must be the text of a JSON object, got '", text, "': ", e.what());
  }
  CONVIRT_CHECK_VALUE(j.is_object(), "model config field '", field,
                      "' must be a JSON object, got '", text, "'");
  return nlohmann::ordered_json::parse(j.dump());
}

}  // namespace

bool ModelConfig::is_builtin_image_encoder(const std::string& name) {
  return name == "resnet18" || name == "resnet34" || name == "resnet50" || name == "resnet101";
}

int64_t ModelConfig::image_channels() const {
  if (is_builtin_image_encoder(image_encoder())) return resnet().in_channels();
  // A user encoder's architecture is its own business, but the data pipelines must know how many
  // channels to read images with: its options say so, as the ResNet options do for a ResNet.
  CONVIRT_CHECK_VALUE(!image_encoder_options().empty(), "model config: the image encoder '",
                      image_encoder(),
                      "' is not built in, so image_encoder_options must hold \"in_channels\" (the "
                      "channels its images have), got no image_encoder_options");
  const auto j = parse_encoder_options("image_encoder_options", image_encoder_options());
  const auto it = j.find("in_channels");
  CONVIRT_CHECK_VALUE(it != j.end() && it->is_number_integer() && it->get<int64_t>() >= 1,
                      "model config: image_encoder_options of the image encoder '", image_encoder(),
                      "' must hold \"in_channels\" as an integer >= 1, got ",
                      it == j.end() ? std::string("no \"in_channels\"") : it->dump());
  return it->get<int64_t>();
}

std::string ModelConfig::to_json() const {
  nlohmann::ordered_json j;
  j["image_encoder"] = image_encoder();
  const auto& r = resnet();
  j["resnet"] = {{"layers", r.layers()},
                 {"base_width", r.base_width()},
                 {"in_channels", r.in_channels()},
                 {"channel_mode", to_string(r.channel_mode())},
                 {"zero_init_residual", r.zero_init_residual()}};
  // The encoder options only when set, as initial_weights below: configs (and so checkpoints)
  // written before they existed keep their exact bytes.
  if (!image_encoder_options().empty())
    j["image_encoder_options"] =
        parse_encoder_options("image_encoder_options", image_encoder_options());
  j["text_encoder"] = text_encoder();
  const auto& b = bert();
  j["bert"] = {{"config", nlohmann::ordered_json::parse(b.config().to_json())},
               {"pooling", to_string(b.pooling())},
               {"frozen_layers", b.frozen_layers()},
               {"freeze_embeddings", b.freeze_embeddings()},
               {"add_pooling_layer", b.add_pooling_layer()}};
  if (!text_encoder_options().empty())
    j["text_encoder_options"] =
        parse_encoder_options("text_encoder_options", text_encoder_options());
  j["projection_dim"] = projection_dim();
  j["head_kind"] = to_string(head_kind());
  j["image_head_hidden"] = image_head_hidden();
  j["text_head_hidden"] = text_head_hidden();
  j["max_length"] = max_length();
  j["image_size"] = image_size();
  // Only when set, so that randomly initialised models keep the config they always had.
  if (!initial_weights().empty())
    j["initial_weights"] = nlohmann::ordered_json::parse(initial_weights());
  return j.dump(2);
}

ModelConfig ModelConfig::from_json(const std::string& text) {
  // Unordered (keys sorted), as always: a config read back and written again keeps its bytes.
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    CONVIRT_CHECK_VALUE(false, "model config is not valid JSON: ", e.what());
  }
  CONVIRT_CHECK_VALUE(j.is_object(), "model config must be a JSON object");
  ModelConfig c;
  try {
    for (auto it = j.begin(); it != j.end(); ++it) {
      const auto& k = it.key();
      const auto& v = it.value();
      if (k == "image_encoder") {
        c.image_encoder(v.get<std::string>());
      } else if (k == "text_encoder") {
        c.text_encoder(v.get<std::string>());
      } else if (k == "projection_dim") {
        c.projection_dim(v.get<int64_t>());
      } else if (k == "head_kind") {
        c.head_kind(parse_projection_kind(v.get<std::string>()));
      } else if (k == "image_head_hidden") {
        c.image_head_hidden(v.get<int64_t>());
      } else if (k == "text_head_hidden") {
        c.text_head_hidden(v.get<int64_t>());
      } else if (k == "max_length") {
        c.max_length(v.get<int64_t>());
      } else if (k == "image_size") {
        c.image_size(v.get<int64_t>());
      } else if (k == "initial_weights") {
        CONVIRT_CHECK_VALUE(v.is_object(),
                            "model config field 'initial_weights' must be an object");
        c.initial_weights(v.dump());
      } else if (k == "image_encoder_options" || k == "text_encoder_options") {
        CONVIRT_CHECK_VALUE(v.is_object(), "model config field '", k,
                            "' must be a JSON object, got ", v.dump());
        if (k == "image_encoder_options")
          c.image_encoder_options(v.dump());
        else
          c.text_encoder_options(v.dump());
      } else if (k == "resnet") {
        auto& r = c.resnet();
        if (v.contains("layers")) r.layers(v["layers"].get<std::vector<int64_t>>());
        if (v.contains("base_width")) r.base_width(v["base_width"].get<int64_t>());
        if (v.contains("in_channels")) r.in_channels(v["in_channels"].get<int64_t>());
        if (v.contains("channel_mode"))
          r.channel_mode(parse_input_channel_mode(v["channel_mode"].get<std::string>()));
        if (v.contains("zero_init_residual"))
          r.zero_init_residual(v["zero_init_residual"].get<bool>());
      } else if (k == "bert") {
        auto& b = c.bert();
        if (v.contains("config")) b.config(BertConfig::from_json(v["config"].dump()));
        if (v.contains("pooling")) b.pooling(parse_bert_pooling(v["pooling"].get<std::string>()));
        if (v.contains("frozen_layers")) b.frozen_layers(v["frozen_layers"].get<int64_t>());
        if (v.contains("freeze_embeddings"))
          b.freeze_embeddings(v["freeze_embeddings"].get<bool>());
        if (v.contains("add_pooling_layer"))
          b.add_pooling_layer(v["add_pooling_layer"].get<bool>());
      } else {
        CONVIRT_CHECK_VALUE(false, "unknown model config field '", k, "'");
      }
    }
  } catch (const nlohmann::json::exception& e) {
    CONVIRT_CHECK_VALUE(false, "model config has a field of the wrong type: ", e.what());
  }
  // The depth is not stored (the name says it); set it so that a config read back equals the one
  // written, e.g. preset("small").resnet().depth() is 18 as small_preset() always gave.
  const auto& name = c.image_encoder();
  if (is_builtin_image_encoder(name)) c.resnet().depth(std::stoll(name.substr(6)));
  return c;
}

}  // namespace convirt::models
