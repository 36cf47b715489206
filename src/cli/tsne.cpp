#include "tsne.h"

#include <convirt/core/threads.h>
#include <convirt/pipeline/tsne_figure.h>

#include <cstdint>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

namespace convirt::cli {
namespace {

struct TsneArgs {
  std::vector<std::string> models, names;
  std::string retrieval_dir, image_root, out = "tsne.svg";
  int64_t image_size = 0, categories = 5, threads = 0;  // image_size 0: each model's
  double perplexity = 30;
  uint64_t seed = 0;
};

int run_tsne(const TsneArgs& a) {
  set_num_threads(static_cast<int>(a.threads));
  auto out = pipeline::tsne_figure(pipeline::TsneFigureOptions()
                                       .model_paths(a.models)
                                       .names(a.names)
                                       .retrieval_dir(a.retrieval_dir)
                                       .image_root(a.image_root)
                                       .out(a.out)
                                       .image_size(a.image_size)
                                       .categories(a.categories)
                                       .perplexity(a.perplexity)
                                       .seed(a.seed));
  std::cout << "t-SNE figure: " << out << "\n";
  return 0;
}

}  // namespace

Subcommand add_tsne(CLI::App& app) {
  auto args = std::make_shared<TsneArgs>();
  auto& ts = *args;
  auto* c_tsne = app.add_subcommand("tsne", "t-SNE of candidate image embeddings (Figure 3)");
  c_tsne->add_option("--model", ts.models, "One or more model checkpoints (one panel each)")
      ->required();
  c_tsne->add_option("--retrieval-dir", ts.retrieval_dir, "Folder of the 8x200 CSVs")->required();
  c_tsne->add_option("--image-root", ts.image_root,
                     "Folder holding CheXpert-v1.0-small (default: the retrieval folder's parent)");
  c_tsne->add_option("--out", ts.out, "SVG file")->capture_default_str();
  c_tsne->add_option("--names", ts.names, "Panel titles, one per model (default: run folders)");
  c_tsne->add_option("--image-size", ts.image_size, "Input side in pixels (0: each model's)")
      ->capture_default_str();
  c_tsne->add_option("--categories", ts.categories, "First k categories shown")
      ->capture_default_str();
  c_tsne->add_option("--perplexity", ts.perplexity, "t-SNE perplexity (lowered for small sets)")
      ->capture_default_str();
  c_tsne->add_option("--seed", ts.seed, "Seed of the t-SNE layout")->capture_default_str();
  return {c_tsne, [args] { return run_tsne(*args); }};
}

}  // namespace convirt::cli
