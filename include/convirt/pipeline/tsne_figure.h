#pragma once
// Figure 3: t-SNE of the image embeddings of retrieval candidates, one panel per model, coloured by
// category, written as an SVG file.

#include <torch/arg.h>

#include <cstdint>
#include <string>
#include <vector>

namespace convirt::pipeline {

/// What tsne_figure draws.
///
/// Example:
///   auto opts = convirt::pipeline::TsneFigureOptions()
///                   .model_paths({"runs/random/model.pt", "runs/convirt/model.pt"})
///                   .retrieval_dir("/data/chexpert-8x200").out("figure3.svg");
struct TsneFigureOptions {
  /// One panel per checkpoint, in order.
  TORCH_ARG(std::vector<std::string>, model_paths) = std::vector<std::string>{};
  /// Panel titles; empty = method_name_for(path) of each checkpoint.
  TORCH_ARG(std::vector<std::string>, names) = std::vector<std::string>{};
  TORCH_ARG(std::string, retrieval_dir) = "";
  /// Folder holding CheXpert-v1.0-small; "" = the retrieval folder's parent.
  TORCH_ARG(std::string, image_root) = "";
  TORCH_ARG(std::string, out) = "figure3_tsne.svg";
  /// Model input side in pixels; 0 = each checkpoint's configured size.
  TORCH_ARG(int64_t, image_size) = 0;
  /// The first k categories are shown (the paper shows 5 of 8).
  TORCH_ARG(int64_t, categories) = 5;
  TORCH_ARG(double, perplexity) = 30;
  TORCH_ARG(uint64_t, seed) = 0;
  TORCH_ARG(std::string, title) = "t-SNE of candidate image embeddings (Figure 3 style)";
  TORCH_ARG(int64_t, workers) = 2;
};

/// Embeds the candidates with each model's image side (encoder + projection), runs t-SNE and writes
/// the SVG; returns options.out.
///
/// Example:
///   std::cout << "figure: " << convirt::pipeline::tsne_figure(opts) << "\n";
std::string tsne_figure(const TsneFigureOptions& options);

}  // namespace convirt::pipeline
