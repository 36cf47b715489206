#pragma once
// torchvision ResNet weights: read a state_dict saved by torch.save in Python
// (`torch.save(torchvision.models.resnet50(weights=...).state_dict(), "r50.pth")`) into a convirt
// ResNet, and write a convirt ResNet back as a state_dict torchvision's model loads.

#include <convirt/io/state_dict.h>
#include <convirt/models/resnet.h>

#include <string>

namespace convirt::io {

/// Options for load_torchvision_resnet.
struct TorchvisionLoadOptions {
  /// Missing or unexpected keys are a ValueError listing them (else they are only reported).
  TORCH_ARG(bool, strict) = true;
  /// When the ResNet has no classifier (num_classes == 0), the file's fc.weight / fc.bias are
  /// skipped (reported in LoadReport::skipped) instead of counting as unexpected.
  TORCH_ARG(bool, skip_classifier) = true;
};

/// Loads torchvision weights (a path to a torch.save / safetensors file, or a state dict) into
/// `net`. RGB conv1 weights [C, 3, 7, 7] loading into a 1-channel ResNet are averaged or summed
/// over the input channels according to its InputChannelMode (reported in LoadReport::converted).
/// Shape mismatches are always a ValueError naming each key with both shapes.
///
/// Example:
///   convirt::models::ResNet net(convirt::models::ResNetOptions(50).in_channels(1));
///   auto report = convirt::io::load_torchvision_resnet(*net, "resnet50.pth");
LoadReport load_torchvision_resnet(models::ResNetImpl& net, const std::string& path,
                                   const TorchvisionLoadOptions& options = {});
LoadReport load_torchvision_resnet(models::ResNetImpl& net, StateDict state,
                                   const TorchvisionLoadOptions& options = {});

/// net's weights under torchvision's names, as a torchvision ResNet of the same depth and width
/// holds them. A 1-channel conv1 [C, 1, 7, 7] is exported as [C, 3, 7, 7] = w / 3 per channel, so
/// the torchvision model gives the same output on the grey image replicated to RGB. Without a
/// classifier there are no fc keys: load with strict=False or replace the model's fc by Identity
/// first.
StateDict torchvision_state_dict(const models::ResNetImpl& net);

/// Writes torchvision_state_dict(net) so that Python's torch.load(path) gives a dict for
/// torchvision.models.resnetXX().load_state_dict(). A ResNet no torchvision model can hold (base
/// width other than 64, custom block counts) is a ValueError naming the width, raised before
/// anything is written.
///
/// Example:
///   convirt::io::save_torchvision_resnet(*net, "resnet50_convirt.pth");
void save_torchvision_resnet(const models::ResNetImpl& net, const std::string& path);

}  // namespace convirt::io
