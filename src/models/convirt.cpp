// Heads, type-erased encoders, configs, presets, the registry and make_convirt.
#include <convirt/core/check.h>
#include <convirt/models/convirt.h>
#include <convirt/models/presets.h>
#include <convirt/models/registry.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

namespace convirt::models {
namespace nn = torch::nn;

// ---------------------------------------------------------------- projection head
ProjectionKind parse_projection_kind(const std::string& name) {
  if (name == "mlp") return ProjectionKind::kMLP;
  if (name == "linear") return ProjectionKind::kLinear;
  CONVIRT_CHECK_VALUE(false, "projection head kind must be 'mlp' or 'linear', got '", name, "'");
  return ProjectionKind::kMLP;
}

std::string to_string(ProjectionKind kind) {
  return kind == ProjectionKind::kMLP ? "mlp" : "linear";
}

ProjectionHeadImpl::ProjectionHeadImpl(ProjectionHeadOptions options_) : options(options_) {
  reset();
}

void ProjectionHeadImpl::reset() {
  CONVIRT_CHECK_VALUE(options.in_features() >= 1 && options.out_features() >= 1,
                      "ProjectionHead in_features and out_features must be >= 1, got ",
                      options.in_features(), " and ", options.out_features());
  CONVIRT_CHECK_VALUE(options.hidden_features() >= 0,
                      "ProjectionHead hidden_features must be >= 0, got ",
                      options.hidden_features());
  if (options.kind() == ProjectionKind::kLinear) {
    fc1 = register_module("fc1", nn::Linear(options.in_features(), options.out_features()));
    return;
  }
  const int64_t hidden =
      options.hidden_features() > 0 ? options.hidden_features() : options.in_features();
  fc1 = register_module("fc1", nn::Linear(options.in_features(), hidden));
  fc2 = register_module("fc2", nn::Linear(hidden, options.out_features()));
}

torch::Tensor ProjectionHeadImpl::forward(const torch::Tensor& x) {
  CONVIRT_CHECK_VALUE(x.dim() == 2 && x.size(1) == options.in_features(),
                      "ProjectionHead input must be [B, ", options.in_features(), "], got ",
                      convirt::detail::shape_str(x.sizes()));
  if (options.kind() == ProjectionKind::kLinear) return fc1(x);
  return fc2(torch::relu(fc1(x)));
}

// ---------------------------------------------------------------- erased encoders
detail::ErasedEncoderBase::ErasedEncoderBase(std::shared_ptr<nn::Module> inner, int64_t output_dim)
    : inner_(std::move(inner)), output_dim_(output_dim) {
  for (const auto& p : inner_->named_parameters(/*recurse=*/false))
    register_parameter(p.key(), p.value());
  for (const auto& b : inner_->named_buffers(/*recurse=*/false))
    register_buffer(b.key(), b.value());
  for (const auto& c : inner_->named_children()) register_module(c.key(), c.value());
}

void detail::ErasedEncoderBase::train(bool on) {
  nn::Module::train(on);
  inner_->train(on);
}

ConVIRTModelImpl::ConVIRTModelImpl(ModelConfig config, AnyImageEncoder image_encoder,
                                   AnyTextEncoder text_encoder, ProjectionHead image_head,
                                   ProjectionHead text_head)
    : ConVIRTImpl(std::move(image_encoder), std::move(text_encoder), std::move(image_head),
                  std::move(text_head)),
      config_(std::move(config)) {}

void ConVIRTModelImpl::set_vocabulary(VocabularyRecord vocabulary) {
  const int64_t expected = config_.bert().config().vocab_size();
  // Fewer tokens than embedding rows is legitimate (rows never looked up); more is not.
  CONVIRT_CHECK_VALUE(static_cast<int64_t>(vocabulary.tokens.size()) <= expected,
                      "vocabulary: the text encoder has vocab_size ", expected,
                      ", the vocabulary has more tokens: ", vocabulary.tokens.size());
  vocabulary_ = std::move(vocabulary);
}

// ---------------------------------------------------------------- config JSON
std::string ModelConfig::to_json() const {
  nlohmann::ordered_json j;
  j["image_encoder"] = image_encoder();
  const auto& r = resnet();
  j["resnet"] = {{"layers", r.layers()},
                 {"base_width", r.base_width()},
                 {"in_channels", r.in_channels()},
                 {"channel_mode", to_string(r.channel_mode())},
                 {"zero_init_residual", r.zero_init_residual()}};
  j["text_encoder"] = text_encoder();
  const auto& b = bert();
  j["bert"] = {{"config", nlohmann::ordered_json::parse(b.config().to_json())},
               {"pooling", to_string(b.pooling())},
               {"frozen_layers", b.frozen_layers()},
               {"freeze_embeddings", b.freeze_embeddings()},
               {"add_pooling_layer", b.add_pooling_layer()}};
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
  return c;
}

// ---------------------------------------------------------------- presets
ModelConfig paper_preset() {
  return ModelConfig()
      .image_encoder("resnet50")
      .resnet(ResNetOptions(50))
      .text_encoder("bert")
      .bert(BertOptions(BertConfig())
                .pooling(BertPooling::kMax)
                .frozen_layers(6)
                .freeze_embeddings(true))
      .projection_dim(512)
      .max_length(128)
      .image_size(224);
}

ModelConfig small_preset(int64_t vocab_size) {
  auto bert = BertConfig()
                  .vocab_size(vocab_size)
                  .hidden_size(128)
                  .num_hidden_layers(2)
                  .num_attention_heads(2)
                  .intermediate_size(512)
                  .max_position_embeddings(64);
  return ModelConfig()
      .image_encoder("resnet18")
      .resnet(ResNetOptions(18).base_width(32).in_channels(1))
      .text_encoder("bert")
      .bert(BertOptions(bert).pooling(BertPooling::kMax).frozen_layers(0).freeze_embeddings(false))
      .projection_dim(128)
      .max_length(64)
      .image_size(64);
}

std::vector<std::string> preset_names() {
  return {"paper", "small"};
}

ModelConfig preset(const std::string& name) {
  if (name == "paper") return paper_preset();
  if (name == "small") return small_preset();
  CONVIRT_CHECK_VALUE(false, "unknown model preset '", name, "'; known: paper, small");
  return {};
}

namespace {

bool is_json_text(const std::string& spec) {
  const auto first = spec.find_first_not_of(" \t\r\n");
  return first != std::string::npos && spec[first] == '{';
}

bool is_json_path(const std::string& spec) {
  return std::filesystem::path(spec).extension() == ".json";
}

}  // namespace

bool is_preset_spec(const std::string& spec) {
  return !is_json_text(spec) && !is_json_path(spec);
}

ModelConfig config_from(const std::string& spec, const std::string& argument) {
  if (is_json_text(spec)) return ModelConfig::from_json(spec);
  if (is_json_path(spec)) {
    std::ifstream in(spec, std::ios::binary);
    CONVIRT_CHECK_VALUE(in.good(), argument, ": cannot read the model config file '", spec, "'");
    std::ostringstream text;
    text << in.rdbuf();
    return ModelConfig::from_json(text.str());
  }
  const auto names = preset_names();
  CONVIRT_CHECK_VALUE(std::find(names.begin(), names.end(), spec) != names.end(), argument,
                      ": unknown model preset '", spec,
                      "'; known: paper, small (or ModelConfig JSON text, or a .json file path)");
  return preset(spec);
}

// ---------------------------------------------------------------- registry
namespace {
struct Registry {
  std::mutex mutex;
  std::map<std::string, ImageEncoderFactory> image;
  std::map<std::string, TextEncoderFactory> text;
};

Registry& registry() {
  static Registry* r = [] {
    auto* reg = new Registry();
    for (int64_t depth : {18, 34, 50, 101}) {
      reg->image["resnet" + std::to_string(depth)] = [depth](const ModelConfig& c) {
        auto opts = c.resnet();
        opts.depth(depth);
        return AnyImageEncoder(ResNet(opts));
      };
    }
    reg->text["bert"] = [](const ModelConfig& c) { return AnyTextEncoder(Bert(c.bert())); };
    return reg;
  }();
  return *r;
}

template <typename Map>
std::vector<std::string> keys(Map& m) {
  std::vector<std::string> out;
  for (const auto& kv : m) out.push_back(kv.first);
  return out;
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}
}  // namespace

void register_image_encoder(const std::string& name, ImageEncoderFactory factory) {
  CONVIRT_CHECK_VALUE(!name.empty() && factory,
                      "register_image_encoder needs a name and a factory");
  std::lock_guard<std::mutex> lock(registry().mutex);
  registry().image[name] = std::move(factory);
}

void register_text_encoder(const std::string& name, TextEncoderFactory factory) {
  CONVIRT_CHECK_VALUE(!name.empty() && factory, "register_text_encoder needs a name and a factory");
  std::lock_guard<std::mutex> lock(registry().mutex);
  registry().text[name] = std::move(factory);
}

std::vector<std::string> image_encoder_names() {
  std::lock_guard<std::mutex> lock(registry().mutex);
  return keys(registry().image);
}

std::vector<std::string> text_encoder_names() {
  std::lock_guard<std::mutex> lock(registry().mutex);
  return keys(registry().text);
}

AnyImageEncoder make_image_encoder(const std::string& name, const ModelConfig& config) {
  ImageEncoderFactory f;
  {
    std::lock_guard<std::mutex> lock(registry().mutex);
    auto it = registry().image.find(name);
    CONVIRT_CHECK_VALUE(it != registry().image.end(), "unknown image encoder '", name,
                        "'; registered: ", joined(keys(registry().image)));
    f = it->second;
  }
  return f(config);
}

AnyTextEncoder make_text_encoder(const std::string& name, const ModelConfig& config) {
  TextEncoderFactory f;
  {
    std::lock_guard<std::mutex> lock(registry().mutex);
    auto it = registry().text.find(name);
    CONVIRT_CHECK_VALUE(it != registry().text.end(), "unknown text encoder '", name,
                        "'; registered: ", joined(keys(registry().text)));
    f = it->second;
  }
  return f(config);
}

ConVIRTModel make_convirt(const ModelConfig& config) {
  CONVIRT_CHECK_VALUE(config.projection_dim() >= 1, "projection_dim must be >= 1, got ",
                      config.projection_dim());
  auto image = make_image_encoder(config.image_encoder(), config);
  auto text = make_text_encoder(config.text_encoder(), config);
  ProjectionHead image_head(ProjectionHeadOptions(image->output_dim(), config.projection_dim())
                                .hidden_features(config.image_head_hidden())
                                .kind(config.head_kind()));
  ProjectionHead text_head(ProjectionHeadOptions(text->output_dim(), config.projection_dim())
                               .hidden_features(config.text_head_hidden())
                               .kind(config.head_kind()));
  return ConVIRTModel(config, image, text, image_head, text_head);
}

ConVIRTModel make_convirt(const std::string& preset_name) {
  return make_convirt(preset(preset_name));
}

}  // namespace convirt::models
