#include <convirt/core/check.h>
#include <convirt/models/batch_norm.h>
#include <convirt/models/resnet.h>

#include <torch/nn/functional/pooling.h>
#include <torch/nn/init.h>

namespace convirt::models {
namespace nn = torch::nn;

namespace {
nn::Conv2d conv(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t pad) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, k).stride(stride).padding(pad).bias(false));
}
nn::Sequential make_downsample(int64_t in, int64_t out, int64_t stride) {
  if (stride == 1 && in == out) return nullptr;
  // Registered as "0" and "1", torchvision's names for the 1x1 projection and its BatchNorm.
  return nn::Sequential(conv(in, out, 1, stride, 0), BatchNorm2d(out));
}

// The BatchNorm layers are convirt::models::BatchNorm2d (torch's, which convert_sync_batch_norm can
// synchronise in place) held in the header's torch::nn::BatchNorm2d handles; norm() calls the
// subclass's forward, which a call through the handle would not reach.
nn::BatchNorm2d batch_norm(int64_t channels) {
  std::shared_ptr<nn::BatchNorm2dImpl> layer =
      std::make_shared<BatchNorm2dImpl>(nn::BatchNorm2dOptions(channels));
  return nn::BatchNorm2d(layer);
}

torch::Tensor norm(nn::BatchNorm2d& bn, const torch::Tensor& x) {
  if (auto* own = dynamic_cast<BatchNorm2dImpl*>(bn.get())) return own->forward(x);
  return bn->forward(x);
}
}  // namespace

InputChannelMode parse_input_channel_mode(const std::string& name) {
  if (name == "average") return InputChannelMode::kAverage;
  if (name == "sum") return InputChannelMode::kSum;
  if (name == "replicate") return InputChannelMode::kReplicate;
  CONVIRT_CHECK_VALUE(false, "channel_mode must be 'average', 'sum' or 'replicate', got '", name,
                      "'");
  return InputChannelMode::kAverage;
}

std::string to_string(InputChannelMode mode) {
  switch (mode) {
    case InputChannelMode::kAverage:
      return "average";
    case InputChannelMode::kSum:
      return "sum";
    case InputChannelMode::kReplicate:
      return "replicate";
  }
  return "average";
}

BasicBlockImpl::BasicBlockImpl(int64_t inplanes, int64_t planes, int64_t stride)
    : inplanes_(inplanes), planes_(planes), stride_(stride) {
  reset();
}

void BasicBlockImpl::reset() {
  const int64_t inplanes = inplanes_, planes = planes_, stride = stride_;
  conv1 = register_module("conv1", conv(inplanes, planes, 3, stride, 1));
  bn1 = register_module("bn1", batch_norm(planes));
  conv2 = register_module("conv2", conv(planes, planes, 3, 1, 1));
  bn2 = register_module("bn2", batch_norm(planes));
  downsample = make_downsample(inplanes, planes * kExpansion, stride);
  if (downsample) register_module("downsample", downsample);
}

torch::Tensor BasicBlockImpl::forward(const torch::Tensor& x) {
  auto out = norm(bn1, conv1(x));
  out.relu_();
  out = norm(bn2, conv2(out));
  // In place, as torchvision: ReLU's backward needs only its output, BatchNorm's only its input.
  out += downsample ? downsample->forward(x) : x;
  return out.relu_();
}

BottleneckImpl::BottleneckImpl(int64_t inplanes, int64_t planes, int64_t stride)
    : inplanes_(inplanes), planes_(planes), stride_(stride) {
  reset();
}

void BottleneckImpl::reset() {
  const int64_t inplanes = inplanes_, planes = planes_, stride = stride_;
  conv1 = register_module("conv1", conv(inplanes, planes, 1, 1, 0));
  bn1 = register_module("bn1", batch_norm(planes));
  conv2 = register_module("conv2", conv(planes, planes, 3, stride, 1));
  bn2 = register_module("bn2", batch_norm(planes));
  conv3 = register_module("conv3", conv(planes, planes * kExpansion, 1, 1, 0));
  bn3 = register_module("bn3", batch_norm(planes * kExpansion));
  downsample = make_downsample(inplanes, planes * kExpansion, stride);
  if (downsample) register_module("downsample", downsample);
}

torch::Tensor BottleneckImpl::forward(const torch::Tensor& x) {
  auto out = norm(bn1, conv1(x));
  out.relu_();
  out = norm(bn2, conv2(out));
  out.relu_();
  out = norm(bn3, conv3(out));
  out += downsample ? downsample->forward(x) : x;
  return out.relu_();
}

ResNetImpl::ResNetImpl(ResNetOptions options_) : options(std::move(options_)) {
  reset();
}

void ResNetImpl::reset() {
  const int64_t depth = options.depth();
  std::vector<int64_t> layers = options.layers();
  if (layers.empty()) {
    switch (depth) {
      case 18:
        layers = {2, 2, 2, 2};
        break;
      case 34:
      case 50:
        layers = {3, 4, 6, 3};
        break;
      case 101:
        layers = {3, 4, 23, 3};
        break;
      default:
        CONVIRT_CHECK_VALUE(false, "ResNet depth must be 18, 34, 50 or 101, got ", depth);
    }
  } else {
    CONVIRT_CHECK_VALUE(depth == 18 || depth == 34 || depth == 50 || depth == 101,
                        "ResNet depth must be 18, 34, 50 or 101 (it selects the block type), got ",
                        depth);
    CONVIRT_CHECK_VALUE(layers.size() == 4, "ResNet layers must have 4 entries, got ",
                        convirt::detail::shape_str(layers));
    for (auto n : layers)
      CONVIRT_CHECK_VALUE(n >= 1, "ResNet layers must be >= 1, got ",
                          convirt::detail::shape_str(layers));
  }
  const int64_t w = options.base_width();
  CONVIRT_CHECK_VALUE(w >= 1, "ResNet base_width must be >= 1, got ", w);
  CONVIRT_CHECK_VALUE(options.in_channels() == 1 || options.in_channels() == 3,
                      "ResNet in_channels must be 1 or 3, got ", options.in_channels());
  CONVIRT_CHECK_VALUE(options.num_classes() >= 0, "ResNet num_classes must be >= 0, got ",
                      options.num_classes());
  const int64_t conv1_in =
      options.in_channels() == 1 && options.channel_mode() != InputChannelMode::kReplicate ? 1 : 3;
  conv1 = register_module("conv1", conv(conv1_in, w, 7, 2, 3));
  bn1 = register_module("bn1", batch_norm(w));
  const int64_t expansion = bottleneck() ? BottleneckImpl::kExpansion : BasicBlockImpl::kExpansion;
  int64_t inplanes = w;
  auto make_layer = [&](int64_t planes, int64_t blocks, int64_t stride) {
    nn::Sequential seq;
    for (int64_t b = 0; b < blocks; ++b) {
      int64_t s = b == 0 ? stride : 1;
      if (bottleneck()) {
        seq->push_back(Bottleneck(inplanes, planes, s));
      } else {
        seq->push_back(BasicBlock(inplanes, planes, s));
      }
      inplanes = planes * expansion;
    }
    return seq;
  };
  layer1 = register_module("layer1", make_layer(w, layers[0], 1));
  layer2 = register_module("layer2", make_layer(w * 2, layers[1], 2));
  layer3 = register_module("layer3", make_layer(w * 4, layers[2], 2));
  layer4 = register_module("layer4", make_layer(w * 8, layers[3], 2));
  output_dim_ = inplanes;
  if (options.num_classes() > 0)
    fc = register_module("fc", nn::Linear(output_dim_, options.num_classes()));

  // torchvision's initialisation, so a fresh convirt ResNet trains like a fresh torchvision one.
  for (auto& m : modules(/*include_self=*/false)) {
    if (auto* c = m->as<nn::Conv2d>()) {
      nn::init::kaiming_normal_(c->weight, 0.0, torch::kFanOut, torch::kReLU);
    } else if (auto* bn = m->as<nn::BatchNorm2d>()) {
      nn::init::ones_(bn->weight);
      nn::init::zeros_(bn->bias);
    }
  }
  if (options.zero_init_residual()) {
    for (auto& m : modules(false)) {
      if (auto* b = m->as<BottleneckImpl>()) nn::init::zeros_(b->bn3->weight);
      if (auto* b = m->as<BasicBlockImpl>()) nn::init::zeros_(b->bn2->weight);
    }
  }
}

torch::Tensor ResNetImpl::prepare_input(const torch::Tensor& images) const {
  CONVIRT_CHECK_VALUE(images.dim() == 4, "images must be 4-D [B, C, H, W], got ",
                      convirt::detail::shape_str(images.sizes()));
  CONVIRT_CHECK_VALUE(images.size(1) == options.in_channels(), "images must have ",
                      options.in_channels(), " channel(s) (ResNetOptions::in_channels), got ",
                      images.size(1), " in shape ", convirt::detail::shape_str(images.sizes()));
  CONVIRT_CHECK_TYPE(images.is_floating_point(), "images must be a floating-point tensor, got ",
                     images.scalar_type());
  if (options.in_channels() == 1 && options.channel_mode() == InputChannelMode::kReplicate)
    return images.expand({images.size(0), 3, images.size(2), images.size(3)});
  return images;
}

torch::Tensor ResNetImpl::forward_features(const torch::Tensor& images) {
  auto x = norm(bn1, conv1(prepare_input(images)));
  x.relu_();
  x = torch::nn::functional::max_pool2d(
      x, torch::nn::functional::MaxPool2dFuncOptions(3).stride(2).padding(1));
  x = layer1->forward(x);
  x = layer2->forward(x);
  x = layer3->forward(x);
  return layer4->forward(x);
}

torch::Tensor ResNetImpl::forward(const torch::Tensor& images) {
  return forward_features(images).mean({2, 3});
}

torch::Tensor ResNetImpl::classify(const torch::Tensor& images) {
  CONVIRT_CHECK_VALUE(!fc.is_empty(), "classify() needs a ResNet built with num_classes > 0");
  return fc(forward(images));
}

}  // namespace convirt::models
