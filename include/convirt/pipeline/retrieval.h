#pragma once
// Table 2 for one checkpoint: zero-shot retrieval on a set in the official 8x200 CSV format,
// image->image and (with the model's vocabulary) text->image, Precision@k in percent.

#include <convirt/eval/tables.h>
#include <torch/arg.h>

#include <cstdint>
#include <string>
#include <vector>

namespace convirt::pipeline {

/// What evaluate_retrieval runs.
///
/// Example:
///   auto opts = convirt::pipeline::RetrievalEvalOptions("runs/mimic/model.pt")
///                   .retrieval_dir("/data/chexpert-8x200").image_root("/data")
///                   .vocab("runs/mimic/vocab.txt");
struct RetrievalEvalOptions {
  explicit RetrievalEvalOptions(std::string model_path = "") : model_path_(std::move(model_path)) {}
  /// A convirt checkpoint (`convirt pretrain`'s model.pt).
  TORCH_ARG(std::string, model_path);
  /// Method name in the table; "" = the checkpoint's run folder (or file stem).
  TORCH_ARG(std::string, method_name) = "";
  /// Folder of the 8x200 CSVs (data::RetrievalSet).
  TORCH_ARG(std::string, retrieval_dir) = "";
  /// Folder holding CheXpert-v1.0-small; "" = the retrieval folder's parent.
  TORCH_ARG(std::string, image_root) = "";
  /// The text queries use the vocabulary embedded in the model; a vocab.txt given here must be
  /// that same vocabulary (else a ValueError with both fingerprints). A model without an embedded
  /// vocabulary needs it, else text->image is left out.
  TORCH_ARG(std::string, vocab) = "";
  /// Model input side in pixels; 0 = the checkpoint's configured image size.
  TORCH_ARG(int64_t, image_size) = 0;
  TORCH_ARG(std::vector<int64_t>, ks) = std::vector<int64_t>{5, 10, 50};
  TORCH_ARG(int64_t, workers) = 2;
};

/// Ranks the candidates by cosine similarity of the model's projected embeddings for every image
/// query (and text query when a vocabulary is given) and returns Precision@k in percent under
/// results.retrieval(method, "image_image" | "text_image", k).
///
/// Example:
///   auto results = convirt::pipeline::evaluate_retrieval(opts);
///   std::cout << convirt::eval::format_retrieval_table(results);
eval::Results evaluate_retrieval(const RetrievalEvalOptions& options);

}  // namespace convirt::pipeline
