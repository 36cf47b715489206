#pragma once
// BERT in the Hugging Face layout (BertModel): embeddings (word + position + token type,
// LayerNorm), post-LN transformer layers with GELU, and the pooler, with HF's parameter names
// ("encoder.layer.3.attention.self.query.weight"), so HF checkpoints load as they are
// (convirt/io/hf.h). As a ConVIRT text encoder, forward(input_ids, attention_mask) pools the last
// hidden states into one vector per text (max over tokens by default, the paper's choice).

#include <torch/nn/cloneable.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <string>

namespace convirt::models {

/// The fields of a Hugging Face BERT config.json that define the network (names as in the JSON).
///
/// Example:
///   auto cfg = convirt::models::BertConfig().vocab_size(2000).hidden_size(128)
///                  .num_hidden_layers(2).num_attention_heads(2).intermediate_size(512);
struct BertConfig {
  TORCH_ARG(int64_t, vocab_size) = 30522;
  TORCH_ARG(int64_t, hidden_size) = 768;
  TORCH_ARG(int64_t, num_hidden_layers) = 12;
  TORCH_ARG(int64_t, num_attention_heads) = 12;
  TORCH_ARG(int64_t, intermediate_size) = 3072;
  /// "gelu" (exact, erf), "gelu_new" / "gelu_pytorch_tanh" (tanh approximation) or "relu".
  TORCH_ARG(std::string, hidden_act) = "gelu";
  TORCH_ARG(double, hidden_dropout_prob) = 0.1;
  TORCH_ARG(double, attention_probs_dropout_prob) = 0.1;
  TORCH_ARG(int64_t, max_position_embeddings) = 512;
  TORCH_ARG(int64_t, type_vocab_size) = 2;
  TORCH_ARG(double, layer_norm_eps) = 1e-12;
  TORCH_ARG(int64_t, pad_token_id) = 0;

 public:
  /// A Hugging Face config.json text ("model_type": "bert", "architectures": ["BertModel"]).
  std::string to_json() const;
  /// Parses a config.json text; fields that are absent keep their defaults, unknown ones are
  /// ignored.
  static BertConfig from_json(const std::string& text);
  /// Throws a ValueError naming the first invalid field (e.g. hidden_size not divisible by heads).
  void validate() const;
};

/// How token outputs become one text vector.
enum class BertPooling {
  kMax,   ///< element-wise max over the tokens whose mask is 1 (paper default)
  kMean,  ///< mean over the tokens whose mask is 1
  kCls,   ///< the first token's output ([CLS])
};
/// "max", "mean" or "cls".
BertPooling parse_bert_pooling(const std::string& name);
std::string to_string(BertPooling pooling);

/// Options for Bert (the network, the pooling and which parts are frozen).
///
/// Example:
///   auto opts = convirt::models::BertOptions(convirt::models::BertConfig())
///                   .pooling(convirt::models::BertPooling::kMax).frozen_layers(6);
struct BertOptions {
  /* implicit */ BertOptions(BertConfig config = {}) : config_(std::move(config)) {}
  TORCH_ARG(BertConfig, config);
  TORCH_ARG(BertPooling, pooling) = BertPooling::kMax;
  /// The first `frozen_layers` transformer layers get requires_grad = false (paper: 6 of 12).
  TORCH_ARG(int64_t, frozen_layers) = 6;
  /// Freeze the embeddings too (paper: yes).
  TORCH_ARG(bool, freeze_embeddings) = true;
  /// Keep HF's pooler (dense + tanh on [CLS]) so checkpoints round-trip completely. ConVIRT's
  /// pooling does not use it, so its parameters are frozen.
  TORCH_ARG(bool, add_pooling_layer) = true;
};

/// One post-LN transformer layer with HF's names (attention.self.{query,key,value},
/// attention.output.{dense,LayerNorm}, intermediate.dense, output.{dense,LayerNorm}).
class BertLayerImpl : public torch::nn::Module {
 public:
  explicit BertLayerImpl(const BertConfig& config);
  /// hidden [B, L, H]; additive_mask [B, 1, 1, L] (0 keep, very negative drop).
  torch::Tensor forward(const torch::Tensor& hidden, const torch::Tensor& additive_mask);

 private:
  BertConfig config_;
  torch::nn::Linear query{nullptr}, key{nullptr}, value{nullptr}, attn_out{nullptr};
  torch::nn::Linear inter{nullptr}, out{nullptr};
  torch::nn::LayerNorm attn_norm{nullptr}, out_norm{nullptr};
  torch::nn::Dropout attn_dropout{nullptr}, hidden_dropout{nullptr};
};
TORCH_MODULE(BertLayer);

/// The BERT text encoder. input_ids and attention_mask are [B, L] int64 (attention_mask 1 for real
/// tokens, 0 for padding), L <= max_position_embeddings, ids in [0, vocab_size). forward() returns
/// [B, hidden_size] pooled vectors, forward_hidden() the last hidden states [B, L, hidden_size].
///
/// Example:
///   convirt::models::Bert bert(convirt::models::BertOptions(cfg).frozen_layers(0));
///   torch::Tensor u = bert(ids, mask);  // [B, hidden]
/// Not Cloneable: HF's nesting (attention.self.query) is built from plain container modules, which
/// LibTorch cannot clone; save and load weights instead.
class BertImpl : public torch::nn::Module {
 public:
  explicit BertImpl(BertOptions options = {});

  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask);
  torch::Tensor forward_hidden(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                               const torch::Tensor& token_type_ids = {});
  /// HF's pooler output tanh(dense(h[:, 0])); requires add_pooling_layer.
  torch::Tensor pooler_output(const torch::Tensor& last_hidden);
  torch::Tensor pool(const torch::Tensor& last_hidden, const torch::Tensor& attention_mask) const;
  int64_t output_dim() const { return options.config().hidden_size(); }
  /// Re-applies the freezing options (after loading weights or changing options.frozen_layers()).
  void apply_freezing();

  BertOptions options;
  torch::nn::Embedding word_embeddings{nullptr}, position_embeddings{nullptr},
      token_type_embeddings{nullptr};
  torch::nn::LayerNorm embeddings_norm{nullptr};
  torch::nn::Dropout embeddings_dropout{nullptr};
  torch::nn::ModuleList layers{nullptr};
  torch::nn::Linear pooler_dense{nullptr};

 private:
  void check_inputs(const torch::Tensor& input_ids, const torch::Tensor& attention_mask) const;
  std::shared_ptr<torch::nn::Module> embeddings_, encoder_, pooler_;
};
TORCH_MODULE(Bert);

}  // namespace convirt::models
