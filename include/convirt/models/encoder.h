#pragma once
// What ConVIRT needs from an encoder, checked at compile time (traits) for ConVIRT<ImageEncoder,
// TextEncoder>, and type-erased encoders (AnyImageEncoder, AnyTextEncoder) for choices made at run
// time.
//
// Requirements on an ImageEncoder E (a TORCH_MODULE holder, e.g. ResNet):
//   - E::ContainedType derives from torch::nn::Module;
//   - e->forward(torch::Tensor images) returns torch::Tensor [B, D];
//   - e->output_dim() (callable on const) returns D as int64_t.
// Requirements on a TextEncoder T (e.g. Bert):
//   - T::ContainedType derives from torch::nn::Module;
//   - t->forward(torch::Tensor input_ids, torch::Tensor attention_mask) returns torch::Tensor [B,
//   D]
//     (input_ids and attention_mask [B, L] int64, as the tokenizer's batch encoding produces);
//   - t->output_dim() (callable on const) returns D as int64_t.

#include <convirt/core/check.h>

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <functional>
#include <memory>
#include <type_traits>
#include <utility>

namespace convirt::models {

template <typename E, typename = void>
struct is_image_encoder : std::false_type {};
template <typename E>
struct is_image_encoder<
    E, std::void_t<typename E::ContainedType,
                   decltype(std::declval<E&>()->forward(std::declval<torch::Tensor>())),
                   decltype(std::declval<const E&>()->output_dim())>>
    : std::bool_constant<
          std::is_base_of_v<torch::nn::Module, typename E::ContainedType> &&
          std::is_convertible_v<decltype(std::declval<E&>()->forward(
                                    std::declval<torch::Tensor>())),
                                torch::Tensor> &&
          std::is_convertible_v<decltype(std::declval<const E&>()->output_dim()), int64_t>> {};
template <typename E>
inline constexpr bool is_image_encoder_v = is_image_encoder<E>::value;

template <typename T, typename = void>
struct is_text_encoder : std::false_type {};
template <typename T>
struct is_text_encoder<
    T, std::void_t<typename T::ContainedType,
                   decltype(std::declval<T&>()->forward(std::declval<torch::Tensor>(),
                                                        std::declval<torch::Tensor>())),
                   decltype(std::declval<const T&>()->output_dim())>>
    : std::bool_constant<
          std::is_base_of_v<torch::nn::Module, typename T::ContainedType> &&
          std::is_convertible_v<decltype(std::declval<T&>()->forward(
                                    std::declval<torch::Tensor>(), std::declval<torch::Tensor>())),
                                torch::Tensor> &&
          std::is_convertible_v<decltype(std::declval<const T&>()->output_dim()), int64_t>> {};
template <typename T>
inline constexpr bool is_text_encoder_v = is_text_encoder<T>::value;

namespace detail {
// Shares the wrapped module's children instead of nesting it, so a type-erased encoder has exactly
// the parameter names of the module it wraps: checkpoints of ConVIRT<ResNet, Bert> and of the
// run-time ConVIRTModel are interchangeable.
class ErasedEncoderBase : public torch::nn::Module {
 public:
  explicit ErasedEncoderBase(std::shared_ptr<torch::nn::Module> inner, int64_t output_dim);
  void train(bool on = true) override;
  int64_t output_dim() const { return output_dim_; }
  /// The wrapped module (ResNetImpl, BertImpl, ...).
  const std::shared_ptr<torch::nn::Module>& inner() const { return inner_; }
  /// The wrapped module as Impl, or nullptr when it is another type.
  template <typename Impl>
  std::shared_ptr<Impl> inner_as() const {
    return std::dynamic_pointer_cast<Impl>(inner_);
  }

 private:
  std::shared_ptr<torch::nn::Module> inner_;
  int64_t output_dim_;
};
}  // namespace detail

/// Any image encoder behind one type (see the requirements above).
///
/// Example:
///   convirt::models::AnyImageEncoder
///   enc(convirt::models::ResNet(convirt::models::ResNetOptions(18)));
class AnyImageEncoderImpl : public detail::ErasedEncoderBase {
 public:
  template <typename E, typename = std::enable_if_t<is_image_encoder_v<E>>>
  explicit AnyImageEncoderImpl(E encoder)
      : ErasedEncoderBase(encoder.ptr(), encoder->output_dim()),
        forward_([m = encoder.ptr()](const torch::Tensor& x) { return m->forward(x); }) {}
  torch::Tensor forward(const torch::Tensor& images) { return forward_(images); }

 private:
  std::function<torch::Tensor(const torch::Tensor&)> forward_;
};
TORCH_MODULE(AnyImageEncoder);

/// Any text encoder behind one type (see the requirements above).
class AnyTextEncoderImpl : public detail::ErasedEncoderBase {
 public:
  template <typename T, typename = std::enable_if_t<is_text_encoder_v<T>>>
  explicit AnyTextEncoderImpl(T encoder)
      : ErasedEncoderBase(encoder.ptr(), encoder->output_dim()),
        forward_([m = encoder.ptr()](const torch::Tensor& ids, const torch::Tensor& mask) {
          return m->forward(ids, mask);
        }) {}
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask) {
    return forward_(input_ids, attention_mask);
  }

 private:
  std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&)> forward_;
};
TORCH_MODULE(AnyTextEncoder);

}  // namespace convirt::models
