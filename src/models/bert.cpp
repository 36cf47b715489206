#include <convirt/core/check.h>
#include <convirt/models/bert.h>

#include <torch/nn/init.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <limits>

namespace convirt::models {
namespace nn = torch::nn;

// ---------------------------------------------------------------- config
std::string BertConfig::to_json() const {
  nlohmann::ordered_json j;
  j["architectures"] = {"BertModel"};
  j["model_type"] = "bert";
  j["vocab_size"] = vocab_size();
  j["hidden_size"] = hidden_size();
  j["num_hidden_layers"] = num_hidden_layers();
  j["num_attention_heads"] = num_attention_heads();
  j["intermediate_size"] = intermediate_size();
  j["hidden_act"] = hidden_act();
  j["hidden_dropout_prob"] = hidden_dropout_prob();
  j["attention_probs_dropout_prob"] = attention_probs_dropout_prob();
  j["max_position_embeddings"] = max_position_embeddings();
  j["type_vocab_size"] = type_vocab_size();
  j["layer_norm_eps"] = layer_norm_eps();
  j["pad_token_id"] = pad_token_id();
  j["position_embedding_type"] = "absolute";
  j["initializer_range"] = 0.02;
  return j.dump(2) + "\n";
}

BertConfig BertConfig::from_json(const std::string& text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    CONVIRT_CHECK_VALUE(false, "BERT config is not valid JSON: ", e.what());
  }
  CONVIRT_CHECK_VALUE(j.is_object(), "BERT config must be a JSON object");
  BertConfig c;
  auto get_int = [&](const char* key, int64_t& field) {
    if (!j.contains(key)) return;
    CONVIRT_CHECK_VALUE(j[key].is_number_integer(), "BERT config field '", key,
                        "' must be an integer, got ", j[key].dump());
    field = j[key].get<int64_t>();
  };
  auto get_double = [&](const char* key, double& field) {
    if (!j.contains(key)) return;
    CONVIRT_CHECK_VALUE(j[key].is_number(), "BERT config field '", key, "' must be a number, got ",
                        j[key].dump());
    field = j[key].get<double>();
  };
  get_int("vocab_size", c.vocab_size());
  get_int("hidden_size", c.hidden_size());
  get_int("num_hidden_layers", c.num_hidden_layers());
  get_int("num_attention_heads", c.num_attention_heads());
  get_int("intermediate_size", c.intermediate_size());
  get_double("hidden_dropout_prob", c.hidden_dropout_prob());
  get_double("attention_probs_dropout_prob", c.attention_probs_dropout_prob());
  get_int("max_position_embeddings", c.max_position_embeddings());
  get_int("type_vocab_size", c.type_vocab_size());
  get_double("layer_norm_eps", c.layer_norm_eps());
  if (j.contains("pad_token_id") && j["pad_token_id"].is_number_integer())
    c.pad_token_id() = j["pad_token_id"].get<int64_t>();
  if (j.contains("hidden_act")) {
    CONVIRT_CHECK_VALUE(j["hidden_act"].is_string(),
                        "BERT config field 'hidden_act' must be a string");
    c.hidden_act() = j["hidden_act"].get<std::string>();
  }
  if (j.contains("position_embedding_type")) {
    auto t = j["position_embedding_type"].get<std::string>();
    CONVIRT_CHECK_VALUE(t == "absolute", "BERT position_embedding_type must be 'absolute', got '",
                        t, "'");
  }
  c.validate();
  return c;
}

void BertConfig::validate() const {
  CONVIRT_CHECK_VALUE(vocab_size() >= 1, "BERT vocab_size must be >= 1, got ", vocab_size());
  CONVIRT_CHECK_VALUE(hidden_size() >= 1, "BERT hidden_size must be >= 1, got ", hidden_size());
  CONVIRT_CHECK_VALUE(num_hidden_layers() >= 0, "BERT num_hidden_layers must be >= 0, got ",
                      num_hidden_layers());
  CONVIRT_CHECK_VALUE(num_attention_heads() >= 1 && hidden_size() % num_attention_heads() == 0,
                      "BERT hidden_size (", hidden_size(),
                      ") must be divisible by num_attention_heads (", num_attention_heads(), ")");
  CONVIRT_CHECK_VALUE(intermediate_size() >= 1, "BERT intermediate_size must be >= 1, got ",
                      intermediate_size());
  CONVIRT_CHECK_VALUE(max_position_embeddings() >= 1,
                      "BERT max_position_embeddings must be >= 1, got ", max_position_embeddings());
  CONVIRT_CHECK_VALUE(type_vocab_size() >= 1, "BERT type_vocab_size must be >= 1, got ",
                      type_vocab_size());
  const auto& act = hidden_act();
  CONVIRT_CHECK_VALUE(
      act == "gelu" || act == "gelu_new" || act == "gelu_pytorch_tanh" || act == "relu",
      "BERT hidden_act must be 'gelu', 'gelu_new', 'gelu_pytorch_tanh' or 'relu', got '", act, "'");
  CONVIRT_CHECK_VALUE(hidden_dropout_prob() >= 0 && hidden_dropout_prob() < 1,
                      "BERT hidden_dropout_prob must be in [0, 1), got ", hidden_dropout_prob());
  CONVIRT_CHECK_VALUE(attention_probs_dropout_prob() >= 0 && attention_probs_dropout_prob() < 1,
                      "BERT attention_probs_dropout_prob must be in [0, 1), got ",
                      attention_probs_dropout_prob());
}

BertPooling parse_bert_pooling(const std::string& name) {
  if (name == "max") return BertPooling::kMax;
  if (name == "mean") return BertPooling::kMean;
  if (name == "cls") return BertPooling::kCls;
  CONVIRT_CHECK_VALUE(false, "pooling must be 'max', 'mean' or 'cls', got '", name, "'");
  return BertPooling::kMax;
}

std::string to_string(BertPooling pooling) {
  switch (pooling) {
    case BertPooling::kMax:
      return "max";
    case BertPooling::kMean:
      return "mean";
    case BertPooling::kCls:
      return "cls";
  }
  return "max";
}

// ---------------------------------------------------------------- layer
namespace {
// An empty module used only to reproduce HF's nesting in parameter names.
std::shared_ptr<nn::Module> group(nn::Module& parent, const std::string& name) {
  return parent.register_module(name, std::make_shared<nn::Module>());
}

void init_linear(nn::Linear& l) {
  // HF's BertPreTrainedModel._init_weights: N(0, 0.02) weights, zero biases.
  nn::init::normal_(l->weight, 0.0, 0.02);
  if (l->bias.defined()) nn::init::zeros_(l->bias);
}

torch::Tensor activation(const torch::Tensor& x, const std::string& act) {
  if (act == "gelu") return torch::gelu(x);
  if (act == "relu") return torch::relu(x);
  return torch::gelu(x, "tanh");
}

double lowest(at::ScalarType t) {
  switch (t) {
    case at::kDouble:
      return std::numeric_limits<double>::lowest();
    case at::kHalf:
      return -65504.0;
    case at::kBFloat16:
      return -3.3895313892515355e38;
    default:
      return static_cast<double>(std::numeric_limits<float>::lowest());
  }
}
}  // namespace

BertLayerImpl::BertLayerImpl(const BertConfig& config) : config_(config) {
  const int64_t h = config.hidden_size();
  auto attention = group(*this, "attention");
  auto self = group(*attention, "self");
  query = self->register_module("query", nn::Linear(h, h));
  key = self->register_module("key", nn::Linear(h, h));
  value = self->register_module("value", nn::Linear(h, h));
  auto attn_output = group(*attention, "output");
  attn_out = attn_output->register_module("dense", nn::Linear(h, h));
  attn_norm = attn_output->register_module(
      "LayerNorm", nn::LayerNorm(nn::LayerNormOptions({h}).eps(config.layer_norm_eps())));
  auto intermediate = group(*this, "intermediate");
  inter = intermediate->register_module("dense", nn::Linear(h, config.intermediate_size()));
  auto output = group(*this, "output");
  out = output->register_module("dense", nn::Linear(config.intermediate_size(), h));
  out_norm = output->register_module(
      "LayerNorm", nn::LayerNorm(nn::LayerNormOptions({h}).eps(config.layer_norm_eps())));
  // Dropout modules are registered (so train()/eval() reach them) under names HF does not save.
  attn_dropout =
      register_module("attn_dropout", nn::Dropout(config.attention_probs_dropout_prob()));
  hidden_dropout = register_module("hidden_dropout", nn::Dropout(config.hidden_dropout_prob()));
  for (auto* l : {&query, &key, &value, &attn_out, &inter, &out}) init_linear(*l);
}

torch::Tensor BertLayerImpl::forward(const torch::Tensor& hidden,
                                     const torch::Tensor& additive_mask) {
  const int64_t b = hidden.size(0), len = hidden.size(1);
  const int64_t heads = config_.num_attention_heads();
  const int64_t d = config_.hidden_size() / heads;
  auto split = [&](const torch::Tensor& x) { return x.view({b, len, heads, d}).transpose(1, 2); };
  auto q = split(query(hidden)), k = split(key(hidden)), v = split(value(hidden));
  auto scores = torch::matmul(q, k.transpose(-1, -2)) / std::sqrt(static_cast<double>(d));
  auto probs = attn_dropout(torch::softmax(scores + additive_mask, -1));
  auto context = torch::matmul(probs, v).transpose(1, 2).reshape({b, len, config_.hidden_size()});
  auto attended = attn_norm(hidden_dropout(attn_out(context)) + hidden);
  auto ff = out(activation(inter(attended), config_.hidden_act()));
  return out_norm(hidden_dropout(ff) + attended);
}

// ---------------------------------------------------------------- model
BertImpl::BertImpl(BertOptions options_) : options(std::move(options_)) {
  const auto& c = options.config();
  c.validate();
  const int64_t h = c.hidden_size();
  embeddings_ = group(*this, "embeddings");
  word_embeddings = embeddings_->register_module(
      "word_embeddings", nn::Embedding(nn::EmbeddingOptions(c.vocab_size(), h)));
  position_embeddings = embeddings_->register_module("position_embeddings",
                                                     nn::Embedding(c.max_position_embeddings(), h));
  token_type_embeddings =
      embeddings_->register_module("token_type_embeddings", nn::Embedding(c.type_vocab_size(), h));
  embeddings_norm = embeddings_->register_module(
      "LayerNorm", nn::LayerNorm(nn::LayerNormOptions({h}).eps(c.layer_norm_eps())));
  embeddings_dropout =
      embeddings_->register_module("dropout", nn::Dropout(c.hidden_dropout_prob()));
  encoder_ = group(*this, "encoder");
  layers = encoder_->register_module("layer", nn::ModuleList());
  for (int64_t i = 0; i < c.num_hidden_layers(); ++i) layers->push_back(BertLayer(c));
  if (options.add_pooling_layer()) {
    pooler_ = group(*this, "pooler");
    pooler_dense = pooler_->register_module("dense", nn::Linear(h, h));
    init_linear(pooler_dense);
  }
  {
    torch::NoGradGuard no_grad;
    for (auto* e : {&word_embeddings, &position_embeddings, &token_type_embeddings})
      nn::init::normal_((*e)->weight, 0.0, 0.02);
    if (c.pad_token_id() >= 0 && c.pad_token_id() < c.vocab_size())
      word_embeddings->weight[c.pad_token_id()].zero_();
  }
  apply_freezing();
}

void BertImpl::apply_freezing() {
  const int64_t n = options.config().num_hidden_layers();
  CONVIRT_CHECK_VALUE(options.frozen_layers() >= 0 && options.frozen_layers() <= n,
                      "frozen_layers must be in [0, num_hidden_layers = ", n, "], got ",
                      options.frozen_layers());
  for (auto& p : embeddings_->parameters()) p.set_requires_grad(!options.freeze_embeddings());
  for (int64_t i = 0; i < n; ++i)
    for (auto& p : layers[i]->parameters()) p.set_requires_grad(i >= options.frozen_layers());
  if (pooler_)
    for (auto& p : pooler_->parameters()) p.set_requires_grad(false);
}

void BertImpl::check_inputs(const torch::Tensor& input_ids,
                            const torch::Tensor& attention_mask) const {
  const auto& c = options.config();
  CONVIRT_CHECK_VALUE(input_ids.dim() == 2, "input_ids must be 2-D [B, L], got ",
                      convirt::detail::shape_str(input_ids.sizes()));
  CONVIRT_CHECK_TYPE(input_ids.scalar_type() == torch::kLong, "input_ids must be int64, got ",
                     input_ids.scalar_type());
  CONVIRT_CHECK_VALUE(attention_mask.sizes() == input_ids.sizes(),
                      "attention_mask must have the shape of "
                      "input_ids ",
                      convirt::detail::shape_str(input_ids.sizes()), ", got ",
                      convirt::detail::shape_str(attention_mask.sizes()));
  CONVIRT_CHECK_VALUE(input_ids.size(1) >= 1,
                      "input_ids must hold at least one token per text, got ",
                      convirt::detail::shape_str(input_ids.sizes()));
  CONVIRT_CHECK_INDEX(input_ids.size(1) <= c.max_position_embeddings(), "sequence length ",
                      input_ids.size(1),
                      " exceeds max_position_embeddings = ", c.max_position_embeddings());
  if (input_ids.numel() > 0) {
    auto mn = input_ids.min().item<int64_t>(), mx = input_ids.max().item<int64_t>();
    CONVIRT_CHECK_INDEX(mn >= 0 && mx < c.vocab_size(),
                        "input_ids must be in [0, vocab_size = ", c.vocab_size(),
                        "), got values in [", mn, ", ", mx, "]");
  }
}

torch::Tensor BertImpl::forward_hidden(const torch::Tensor& input_ids,
                                       const torch::Tensor& attention_mask,
                                       const torch::Tensor& token_type_ids) {
  check_inputs(input_ids, attention_mask);
  const int64_t len = input_ids.size(1);
  auto positions = torch::arange(len, input_ids.options());
  auto types = token_type_ids.defined() ? token_type_ids : torch::zeros_like(input_ids);
  if (token_type_ids.defined()) {
    CONVIRT_CHECK_VALUE(token_type_ids.sizes() == input_ids.sizes(),
                        "token_type_ids must have shape ",
                        convirt::detail::shape_str(input_ids.sizes()), ", got ",
                        convirt::detail::shape_str(token_type_ids.sizes()));
  }
  auto x =
      word_embeddings(input_ids) + token_type_embeddings(types) + position_embeddings(positions);
  x = embeddings_dropout(embeddings_norm(x));
  // HF's extended mask: (1 - mask) * finfo(dtype).min, broadcast over heads and query positions.
  auto keep = attention_mask.to(x.scalar_type()).unsqueeze(1).unsqueeze(2);
  auto additive = (1.0 - keep) * lowest(x.scalar_type());
  for (const auto& layer : *layers) x = layer->as<BertLayer>()->forward(x, additive);
  return x;
}

torch::Tensor BertImpl::pool(const torch::Tensor& last_hidden,
                             const torch::Tensor& attention_mask) const {
  switch (options.pooling()) {
    case BertPooling::kCls:
      return last_hidden.select(1, 0);
    case BertPooling::kMean: {
      auto m = attention_mask.to(last_hidden.scalar_type()).unsqueeze(-1);
      return (last_hidden * m).sum(1) / m.sum(1).clamp_min(1.0);
    }
    case BertPooling::kMax: {
      auto pad = (attention_mask == 0).unsqueeze(-1);
      return last_hidden.masked_fill(pad, -std::numeric_limits<double>::infinity()).amax(1);
    }
  }
  return last_hidden.select(1, 0);
}

torch::Tensor BertImpl::forward(const torch::Tensor& input_ids,
                                const torch::Tensor& attention_mask) {
  auto hidden = forward_hidden(input_ids, attention_mask);
  if (options.pooling() != BertPooling::kCls && attention_mask.numel() > 0) {
    // A text with no real token would max-pool to -inf and poison the loss; say so instead.
    auto tokens = attention_mask.ne(0).sum(1);
    CONVIRT_CHECK_VALUE(tokens.min().item<int64_t>() > 0,
                        "every row of attention_mask needs at least one 1 (row ",
                        tokens.argmin().item<int64_t>(), " is all padding)");
  }
  return pool(hidden, attention_mask);
}

torch::Tensor BertImpl::pooler_output(const torch::Tensor& last_hidden) {
  CONVIRT_CHECK_VALUE(!pooler_dense.is_empty(), "pooler_output needs add_pooling_layer = true");
  return torch::tanh(pooler_dense(last_hidden.select(1, 0)));
}

}  // namespace convirt::models
