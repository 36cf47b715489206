#pragma once
// Whole-model checkpoints of a ConVIRT model: one safetensors file holding every parameter and
// buffer (names as in named_parameters(), e.g. "image_encoder.layer1.0.conv1.weight") and, in its
// metadata, the ModelConfig JSON, so load_convirt() rebuilds the model without being told its
// architecture. Exports take the encoders back to torchvision and Hugging Face formats.

#include <convirt/io/hf.h>
#include <convirt/io/state_dict.h>
#include <convirt/models/convirt.h>

#include <string>

namespace convirt::io {

/// Writes `model` (weights, config and, when recorded, the vocabulary it was trained with) to
/// `path` (atomically).
///
/// Example:
///   convirt::io::save_convirt(*model, "convirt.safetensors");
void save_convirt(const models::ConVIRTModelImpl& model, const std::string& path);

/// Rebuilds the model saved at `path` (config from the file) and loads its weights strictly.
///
/// Example:
///   auto model = convirt::io::load_convirt("convirt.safetensors");
models::ConVIRTModel load_convirt(const std::string& path);

/// The vocabulary stored in a checkpoint (empty for files written without one).
models::VocabularyRecord read_convirt_vocabulary(const std::string& path);

/// The ModelConfig stored in a checkpoint (ValueError when the file has none).
models::ModelConfig read_convirt_config(const std::string& path);

/// Loads a checkpoint's weights into an existing model (any ConVIRT<...> with the same names).
LoadReport load_convirt_weights(torch::nn::Module& model, const std::string& path,
                                bool strict = true);

/// Writes the image encoder as a torchvision state_dict (torch.save format); it must be a ResNet
/// torchvision has (base width 64, standard block counts), else a ValueError before any write.
void export_torchvision(const models::ConVIRTModelImpl& model, const std::string& path);

/// Writes the text encoder as a HF BERT folder; it must be a Bert. The folder's vocab.txt is a
/// copy of `vocab_path`, or when that is "" the model's own vocabulary (if recorded).
void export_hf(const models::ConVIRTModelImpl& model, const std::string& dir,
               const std::string& vocab_path = "",
               HfWeightFormat format = HfWeightFormat::kSafetensors);

}  // namespace convirt::io
