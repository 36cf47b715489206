#pragma once
// The paper's initialisation (docs/paper.md section 2): the image encoder from ImageNet weights (a
// torchvision ResNet state_dict), the text encoder from ClinicalBERT (a Hugging Face BERT
// folder), with BERT's embeddings and first half of its layers frozen. Each file defines its
// encoder's architecture, as a checkpoint should: the ResNet's depth and width are read from the
// state_dict, BERT's from config.json, and the tokenizer (vocab.txt, do_lower_case) from the
// folder. Loads are strict: a missing, unexpected or mis-shaped tensor is a ValueError naming the
// key (and both shapes). The files' paths, sizes and SHA-256 go into the model config
// (ModelConfig::initial_weights), so every checkpoint of the run says what it started from.

#include <convirt/io/state_dict.h>
#include <convirt/models/convirt.h>
#include <convirt/text/wordpiece.h>

#include <memory>
#include <string>

namespace convirt::train {

/// Which files a model starts from; empty paths leave that encoder randomly initialised.
///
/// Example:
///   auto init = convirt::train::InitialWeightsOptions()
///                   .image_init("resnet50-imagenet.pth").text_init("Bio_ClinicalBERT");
struct InitialWeightsOptions {
  /// torchvision ResNet state_dict: torch.save's .pth/.pt, or .safetensors.
  TORCH_ARG(std::string, image_init) = "";
  /// Hugging Face BERT folder: config.json, model.safetensors or pytorch_model.bin, vocab.txt
  /// and (optionally) tokenizer_config.json.
  TORCH_ARG(std::string, text_init) = "";
  /// Transformer layers of an initialised BERT that stay frozen, with its embeddings; -1 is the
  /// paper's rule, the first half (6 of 12). 0 trains all of BERT.
  TORCH_ARG(int64_t, text_frozen_layers) = -1;

 public:
  bool empty() const { return image_init_.empty() && text_init_.empty(); }
  /// Checks that the files exist (a ValueError naming the missing one) before a run spends time
  /// reading its data; their contents are checked when loaded.
  void validate() const;
};

/// `config` as the init files define it: the ResNet's depth, block counts and base width from
/// image_init (input channels stay config's: RGB weights load into a grey network through its
/// channel_mode); BERT's architecture from text_init's config.json, with the paper's freezing and
/// max_length capped at its position embeddings; initial_weights() set to the files' provenance.
/// A file that is missing, unreadable or not of its kind is a ValueError naming it.
///
/// Example:
///   auto cfg = convirt::train::initial_config(convirt::models::preset("paper"), init);
models::ModelConfig initial_config(models::ModelConfig config, const InitialWeightsOptions& init);

/// Loads the files into `model` (built from initial_config()) strictly, and re-applies BERT's
/// freezing. Returns one line per encoder for the log.
std::string load_initial_weights(models::ConVIRTModelImpl& model,
                                 const InitialWeightsOptions& init);

/// make_convirt(initial_config(config, init)) with the files loaded: the one way the command line
/// and Python build a run's model. `log`, when given, receives load_initial_weights()' lines.
///
/// Example:
///   auto model = convirt::train::make_initialised_model(convirt::models::preset("paper"), init);
models::ConVIRTModel make_initialised_model(const models::ModelConfig& config,
                                            const InitialWeightsOptions& init,
                                            std::string* log = nullptr);

/// The tokenizer of a Hugging Face BERT folder: its vocab.txt, do_lower_case (and strip_accents)
/// from tokenizer_config.json (BERT's defaults when absent). The vocabulary must have config.json's
/// vocab_size entries.
std::shared_ptr<text::WordPieceTokenizer> hf_tokenizer(const std::string& dir);

/// The ResNet encoder options a torchvision state_dict describes (depth from the block type and
/// counts, base_width from conv1), starting from `base` for the rest.
models::ModelConfig resnet_config_from_state_dict(models::ModelConfig config,
                                                  const io::StateDict& state,
                                                  const std::string& what);

/// Lower-case hex SHA-256 of a file's bytes.
std::string file_sha256(const std::string& path);

}  // namespace convirt::train
