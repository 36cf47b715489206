// Heads, type-erased encoders, the registry and make_convirt (configs: config.cpp; presets:
// presets.cpp).
#include <convirt/core/check.h>
#include <convirt/models/convirt.h>
#include <convirt/models/presets.h>
#include <convirt/models/registry.h>

#include <map>
#include <mutex>

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
  (void)config.to_json();  // a ValueError naming the field if an encoder's options are not JSON
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
  (void)config.to_json();  // a ValueError naming the field if an encoder's options are not JSON
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
