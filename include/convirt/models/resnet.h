#pragma once
// torchvision's ResNet (v1.5: the stride sits in the 3x3 convolution of a bottleneck) with
// torchvision's module and parameter names, so
// `torch.save(torchvision.models.resnet50().state_dict())` loads as is (see
// convirt/io/torchvision.h). As an encoder its forward returns the globally average-pooled
// features.

#include <torch/nn/cloneable.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <string>
#include <vector>

namespace convirt::models {

/// How a ResNet with `in_channels == 1` (X-rays) relates to RGB weights.
enum class InputChannelMode {
  kAverage,  ///< conv1 has 1 input channel; RGB weights load as their mean over channels
  kSum,      ///< conv1 has 1 input channel; RGB weights load as their sum (same response as the RGB
         ///< network on a grey image replicated to 3 channels; round-trips through export exactly)
  kReplicate,  ///< conv1 keeps 3 input channels; the grey input is replicated to 3 channels in
               ///< forward
};

/// "average", "sum" or "replicate".
InputChannelMode parse_input_channel_mode(const std::string& name);
std::string to_string(InputChannelMode mode);

/// Options for ResNet.
///
/// Example:
///   auto opts = convirt::models::ResNetOptions(18).base_width(32).in_channels(1);
///   convirt::models::ResNet net(opts);
struct ResNetOptions {
  /* implicit */ ResNetOptions(int64_t depth = 50) : depth_(depth) {}
  /// 18, 34 (basic blocks), 50, 101 (bottlenecks): torchvision's configurations.
  TORCH_ARG(int64_t, depth);
  /// Blocks per stage, overriding the depth's standard counts when not empty (4 values, each >= 1).
  TORCH_ARG(std::vector<int64_t>, layers) = {};
  /// Channels of the stem and first stage; stages have base_width x {1, 2, 4, 8} (x4 for bottleneck
  /// outputs). 64 is torchvision; 16-32 makes a CPU-friendly network.
  TORCH_ARG(int64_t, base_width) = 64;
  /// Channels of the images forward() accepts: 3 (RGB) or 1 (grey, see channel_mode).
  TORCH_ARG(int64_t, in_channels) = 3;
  TORCH_ARG(InputChannelMode, channel_mode) = InputChannelMode::kAverage;
  /// > 0 adds torchvision's final `fc` layer (classify()); 0 builds the encoder without it.
  TORCH_ARG(int64_t, num_classes) = 0;
  /// Initialise the last BatchNorm of each residual branch to zero (torchvision's option).
  TORCH_ARG(bool, zero_init_residual) = false;
};

/// Basic residual block (ResNet-18/34): conv3x3 -> BN -> ReLU -> conv3x3 -> BN, + identity.
class BasicBlockImpl : public torch::nn::Cloneable<BasicBlockImpl> {
 public:
  static constexpr int64_t kExpansion = 1;
  BasicBlockImpl(int64_t inplanes, int64_t planes, int64_t stride);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
  torch::nn::Sequential downsample{nullptr};

 private:
  int64_t inplanes_, planes_, stride_;
};
TORCH_MODULE(BasicBlock);

/// Bottleneck block (ResNet-50/101): 1x1 -> 3x3 (stride) -> 1x1 (x4 channels), + identity.
class BottleneckImpl : public torch::nn::Cloneable<BottleneckImpl> {
 public:
  static constexpr int64_t kExpansion = 4;
  BottleneckImpl(int64_t inplanes, int64_t planes, int64_t stride);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  torch::nn::Sequential downsample{nullptr};

 private:
  int64_t inplanes_, planes_, stride_;
};
TORCH_MODULE(Bottleneck);

/// The ResNet image encoder. Input [B, in_channels, H, W] floating point (H, W >= 32 is sensible);
/// forward() gives [B, output_dim()] (2048 for ResNet-50), forward_features() the last feature map
/// [B, output_dim(), H/32, W/32].
///
/// Example:
///   convirt::models::ResNet net(convirt::models::ResNetOptions(50));
///   torch::Tensor h = net(torch::randn({2, 3, 224, 224}));  // [2, 2048]
class ResNetImpl : public torch::nn::Cloneable<ResNetImpl> {
 public:
  explicit ResNetImpl(ResNetOptions options = {});
  void reset() override;

  torch::Tensor forward(const torch::Tensor& images);
  torch::Tensor forward_features(const torch::Tensor& images);
  /// fc(forward(images)); requires num_classes > 0.
  torch::Tensor classify(const torch::Tensor& images);
  /// Width of forward()'s output.
  int64_t output_dim() const { return output_dim_; }
  /// Whether residual blocks are bottlenecks (depth >= 50).
  bool bottleneck() const { return options.depth() >= 50; }

  ResNetOptions options;
  torch::nn::Conv2d conv1{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr};
  torch::nn::Sequential layer1{nullptr}, layer2{nullptr}, layer3{nullptr}, layer4{nullptr};
  torch::nn::Linear fc{nullptr};

 private:
  torch::Tensor prepare_input(const torch::Tensor& images) const;
  int64_t output_dim_ = 0;
};
TORCH_MODULE(ResNet);

}  // namespace convirt::models
