#pragma once
// The ConVIRT model (paper section 2): v = g_v(f_v(image)), u = g_u(f_u(text)).
//
// Two ways to compose it, one set of modules:
//   - compile time: ConVIRT<ResNet, Bert> (any types meeting the requirements in encoder.h);
//   - run time: ConVIRTModel, built by make_convirt() from a ModelConfig or a preset name through
//   the
//     encoder registry (registry.h). It is ConVIRTImpl<AnyImageEncoder, AnyTextEncoder> plus its
//     config.
// Both register "image_encoder", "text_encoder", "image_head" and "text_head" with the encoders'
// own parameter names, so their checkpoints are interchangeable.

#include <convirt/models/config.h>
#include <convirt/models/encoder.h>
#include <convirt/models/projection_head.h>

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace convirt::models {

/// Image and text encoders, each followed by its projection head.
///
/// Example:
///   using Model = convirt::models::ConVIRT<convirt::models::ResNet, convirt::models::Bert>;
///   Model model(convirt::models::ResNet(18), convirt::models::Bert(bert_options), 512);
///   auto [v, u] = model->forward(images, input_ids, attention_mask);  // [B, 512] each
template <typename ImageEncoder, typename TextEncoder, typename ImageHead = ProjectionHead,
          typename TextHead = ProjectionHead>
class ConVIRTImpl : public torch::nn::Module {
  static_assert(is_image_encoder_v<ImageEncoder>,
                "ImageEncoder must be a module holder with Tensor forward(Tensor) and int64_t "
                "output_dim() const (see convirt/models/encoder.h)");
  static_assert(
      is_text_encoder_v<TextEncoder>,
      "TextEncoder must be a module holder with Tensor forward(Tensor ids, Tensor mask) and "
      "int64_t output_dim() const (see convirt/models/encoder.h)");
  static_assert(
      is_image_encoder_v<ImageHead> && is_image_encoder_v<TextHead>,
      "heads must be module holders with Tensor forward(Tensor) and int64_t output_dim() const");

 public:
  ConVIRTImpl(ImageEncoder image_encoder, TextEncoder text_encoder, ImageHead image_head,
              TextHead text_head)
      : image_encoder(std::move(image_encoder)),
        text_encoder(std::move(text_encoder)),
        image_head(std::move(image_head)),
        text_head(std::move(text_head)) {
    register_module("image_encoder", this->image_encoder.ptr());
    register_module("text_encoder", this->text_encoder.ptr());
    register_module("image_head", this->image_head.ptr());
    register_module("text_head", this->text_head.ptr());
  }

  /// Paper heads: MLPs with hidden width = encoder width and output `projection_dim`.
  template <typename IH = ImageHead, typename TH = TextHead,
            typename = std::enable_if_t<std::is_same_v<IH, ProjectionHead> &&
                                        std::is_same_v<TH, ProjectionHead>>>
  ConVIRTImpl(ImageEncoder image_encoder, TextEncoder text_encoder, int64_t projection_dim = 512)
      : ConVIRTImpl(
            image_encoder, text_encoder,
            ProjectionHead(ProjectionHeadOptions(image_encoder->output_dim(), projection_dim)),
            ProjectionHead(ProjectionHeadOptions(text_encoder->output_dim(), projection_dim))) {}

  /// v = g_v(f_v(images)): [B, projection_dim].
  torch::Tensor encode_image(const torch::Tensor& images) {
    return image_head->forward(image_encoder->forward(images));
  }
  /// u = g_u(f_u(input_ids, attention_mask)): [B, projection_dim].
  torch::Tensor encode_text(const torch::Tensor& input_ids, const torch::Tensor& attention_mask) {
    return text_head->forward(text_encoder->forward(input_ids, attention_mask));
  }
  /// (v, u) for a batch of pairs. The batch sizes must agree.
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& images,
                                                  const torch::Tensor& input_ids,
                                                  const torch::Tensor& attention_mask) {
    CONVIRT_CHECK_VALUE(
        images.dim() >= 1 && input_ids.dim() >= 1 && images.size(0) == input_ids.size(0),
        "images and input_ids must have the same batch size, got ",
        convirt::detail::shape_str(images.sizes()), " and ",
        convirt::detail::shape_str(input_ids.sizes()));
    return {encode_image(images), encode_text(input_ids, attention_mask)};
  }
  /// Output width of both heads.
  int64_t output_dim() const { return image_head->output_dim(); }

  ImageEncoder image_encoder;
  TextEncoder text_encoder;
  ImageHead image_head;
  TextHead text_head;
};

/// Module holder for ConVIRTImpl (TORCH_MODULE cannot take a template).
template <typename ImageEncoder, typename TextEncoder, typename ImageHead = ProjectionHead,
          typename TextHead = ProjectionHead>
class ConVIRT
    : public torch::nn::ModuleHolder<ConVIRTImpl<ImageEncoder, TextEncoder, ImageHead, TextHead>> {
 public:
  using torch::nn::ModuleHolder<
      ConVIRTImpl<ImageEncoder, TextEncoder, ImageHead, TextHead>>::ModuleHolder;
};

/// The tokenizer a model's text encoder was trained with: token ids are positions in `tokens`,
/// so a model read with another vocabulary silently sees other words. It travels inside every
/// checkpoint (io::save_convirt), so a saved model is usable without its run folder. Plain data:
/// the tokenizer itself lives in convirt::text (pipeline/model_text.h builds one from this).
struct VocabularyRecord {
  std::vector<std::string> tokens;  ///< one per id; empty when not recorded (untrained models)
  bool lowercase = true;
  std::optional<bool> strip_accents;
  bool empty() const { return tokens.empty(); }
};

/// The run-time composed model: encoders chosen by name, with the config that built it (saved in
/// checkpoints so that load_convirt() can rebuild the model) and the vocabulary it was trained
/// with.
class ConVIRTModelImpl : public ConVIRTImpl<AnyImageEncoder, AnyTextEncoder> {
 public:
  ConVIRTModelImpl(ModelConfig config, AnyImageEncoder image_encoder, AnyTextEncoder text_encoder,
                   ProjectionHead image_head, ProjectionHead text_head);
  const ModelConfig& config() const { return config_; }
  const VocabularyRecord& vocabulary() const { return vocabulary_; }
  /// Records the vocabulary (the trainer does this); it may not have more tokens than the text
  /// encoder's vocab_size (a ValueError naming both).
  void set_vocabulary(VocabularyRecord vocabulary);

 private:
  ModelConfig config_;
  VocabularyRecord vocabulary_;
};
TORCH_MODULE(ConVIRTModel);

/// Builds the model a config describes (encoders looked up in the registry, heads from the config).
/// Freezing options are applied; weights are freshly initialised.
///
/// Example:
///   auto model = convirt::models::make_convirt(convirt::models::preset("small"));
///   auto [v, u] = model->forward(images, ids, mask);
ConVIRTModel make_convirt(const ModelConfig& config);
/// make_convirt(preset(name)).
ConVIRTModel make_convirt(const std::string& preset_name);

}  // namespace convirt::models
