#pragma once
// Hugging Face BERT folders: config.json + model.safetensors and/or pytorch_model.bin + vocab.txt.
// Reading accepts HF's parameter names with or without the "bert." prefix (BertModel vs
// BertForPreTraining / ClinicalBERT checkpoints), the old LayerNorm.gamma/beta names, and skips
// what a BertModel does not hold (pretraining heads "cls.*", the position_ids buffer). Writing
// produces a folder that transformers.BertModel.from_pretrained(folder) opens.

#include <convirt/io/state_dict.h>
#include <convirt/models/bert.h>

#include <string>

namespace convirt::io {

/// Which weight files save_hf_bert writes.
enum class HfWeightFormat {
  kSafetensors,  ///< model.safetensors (HF's default)
  kPytorchBin,   ///< pytorch_model.bin (torch.save of the state dict)
  kBoth,
};

/// Reads <dir>/config.json (or a config.json path).
models::BertConfig read_bert_config(const std::string& path);

/// The weights in `path`: a folder (model.safetensors preferred, else pytorch_model.bin) or a file.
/// Keys are renamed to BertImpl's names (prefix removed, gamma/beta -> weight/bias); keys a
/// BertModel does not hold are returned in `skipped`.
StateDict read_hf_bert_weights(const std::string& path,
                               std::vector<std::string>* skipped = nullptr);

/// Loads HF weights (folder or file) into `bert`. Strict by default: missing or unexpected keys are
/// a ValueError listing them by name; shape mismatches always are. Freezing is re-applied
/// afterwards.
///
/// Example:
///   convirt::models::Bert bert(convirt::io::read_bert_config("ClinicalBERT"));
///   convirt::io::load_hf_bert(*bert, "ClinicalBERT");
LoadReport load_hf_bert(models::BertImpl& bert, const std::string& path, bool strict = true);

/// Builds a Bert from a HF folder: config.json gives the architecture, `options` the pooling and
/// freezing (its config is replaced), then the weights are loaded strictly.
models::Bert load_hf_bert(const std::string& dir, models::BertOptions options = {});

/// Writes config.json, the weights (HF names, no prefix) and, when `vocab_path` is not empty, a
/// copy of that vocab.txt (its line count must equal vocab_size) into `dir` (created if needed).
///
/// Example:
///   convirt::io::save_hf_bert(*bert, "out/bert", "vocab.txt");
void save_hf_bert(const models::BertImpl& bert, const std::string& dir,
                  const std::string& vocab_path = "",
                  HfWeightFormat format = HfWeightFormat::kSafetensors);

}  // namespace convirt::io
