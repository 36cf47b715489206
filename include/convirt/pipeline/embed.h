#pragma once
// Embeddings out of a trained model, and a nearest-neighbour search over them. pipeline::embed
// turns a folder (or CSV list) of images and a file of texts into one file of embeddings
// (safetensors, or .npy arrays with a JSON sidecar) with the image paths and texts recorded beside
// them; it works in shards so that a large folder interrupted half way resumes where it stopped.
// pipeline::search ranks the entries of such a file by cosine similarity with a text or an image.
// The `convirt embed` and `convirt search` commands and convirt.eval.embed / convirt.eval.search
// call these functions.

#include <torch/arg.h>
#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace convirt::pipeline {

/// What pipeline::embed writes. `features` selects the tensors:
///   "projected" (default): image_embeddings [N, d] and/or text_embeddings [M, d], the outputs of
///                the projection heads, the space the contrastive loss (and search) compares in;
///   "encoder":   image_features [N, F] and/or text_features [M, H], the encoders' outputs before
///                the heads (what the paper's linear protocol trains on);
///   "both":      all of them.
///
/// Example:
///   auto r = convirt::pipeline::embed(convirt::pipeline::EmbedOptions("runs/demo/model.pt")
///                                         .images("scans/")
///                                         .texts("findings.txt")
///                                         .out("emb.safetensors"));
struct EmbedOptions {
  explicit EmbedOptions(std::string model_path = "") : model_path_(std::move(model_path)) {}
  /// A convirt checkpoint (`convirt pretrain`'s model.pt).
  TORCH_ARG(std::string, model_path);
  /// Images: a folder (searched recursively for .png, .jpg, .jpeg and .dcm files, taken in sorted
  /// order) or a .csv file with one image path per row (see image_column); "" = no images.
  TORCH_ARG(std::string, images) = "";
  /// CSV input: the column holding the paths; "" = "path", "Path" or "image" when present, else
  /// the first column.
  TORCH_ARG(std::string, image_column) = "";
  /// CSV input: the folder relative paths are resolved against; "" = the CSV's folder.
  TORCH_ARG(std::string, image_root) = "";
  /// A UTF-8 text file, one text per line (blank lines skipped); "" = no texts.
  TORCH_ARG(std::string, texts) = "";
  /// The output: "<name>.safetensors" (one file) or "<name>.npy" (one .npy per array and
  /// <name>.json with the paths and texts; see EmbedResult::files).
  TORCH_ARG(std::string, out) = "";
  /// "projected", "encoder" or "both" (above).
  TORCH_ARG(std::string, features) = "projected";
  /// The model's vocab.txt; "" = beside the checkpoint or in the folder above it.
  TORCH_ARG(std::string, vocab) = "";
  /// Model input side in pixels; 0 = the checkpoint's configured image size.
  TORCH_ARG(int64_t, image_size) = 0;
  /// Images (or texts) per forward pass.
  TORCH_ARG(int64_t, batch_size) = 64;
  /// Rows per shard: the work a resumed run can lose at most, and how often progress is saved.
  TORCH_ARG(int64_t, shard_size) = 1024;
  /// Intra-op threads (0 = all cores) and image-decoding threads.
  TORCH_ARG(int64_t, threads) = 0;
  TORCH_ARG(int64_t, workers) = 2;
};

/// Reported after every batch: `kind` is "images" or "texts"; `done` of `total` rows are embedded,
/// `resumed` of them were read back from an earlier, interrupted run.
struct EmbedProgress {
  std::string kind;
  int64_t done = 0;
  int64_t total = 0;
  int64_t resumed = 0;
};
using EmbedCallback = std::function<void(const EmbedProgress&)>;

/// What pipeline::embed wrote.
struct EmbedResult {
  std::vector<std::string> files;        ///< the output file(s), the sidecar last for .npy
  std::vector<std::string> image_paths;  ///< the rows of the image tensors, in order
  std::vector<std::string> texts;        ///< the rows of the text tensors, in order
  std::vector<std::string> skipped;      ///< "path: reason" of each unreadable image (left out)
  std::vector<std::string> tensors;      ///< names of the tensors written, e.g. "image_embeddings"
  int64_t resumed = 0;                   ///< rows read back from an interrupted run's shards
};

/// Embeds the images and texts and writes `out`. Work goes to "<out>.parts/" shard by shard
/// (manifest.json and one safetensors file per shard, each written atomically); a re-run with the
/// same model, inputs and options continues from the shards there, and one with a different model
/// (checkpoint content), input list or options is refused rather than mixed. The final file is
/// written atomically and the parts folder removed. Unreadable images are skipped and listed.
/// ValueErrors name the option at fault.
EmbedResult embed(const EmbedOptions& options, const EmbedCallback& on_progress = nullptr);

/// Writes `array` (float32, float64, int64, int32 or uint8; any shape) as a NumPy .npy file (format
/// 1.0, C order, little endian), atomically.
/// Example: convirt::pipeline::write_npy("emb.npy", torch::randn({4, 8}));
void write_npy(const std::string& path, const torch::Tensor& array);

/// What pipeline::search looks for: exactly one of `text` and `image`.
///
/// Example:
///   auto hits = convirt::pipeline::search(
///       convirt::pipeline::SearchOptions("emb.safetensors").text("pleural effusion").k(5));
///   for (const auto& h : hits) std::printf("%lld %.3f %s\n", h.rank, h.score, h.item.c_str());
struct SearchOptions {
  explicit SearchOptions(std::string index = "") : index_(std::move(index)) {}
  /// An embeddings file of pipeline::embed (.safetensors) with projected embeddings.
  TORCH_ARG(std::string, index);
  /// The query: a sentence (encoded by the text encoder) or an image file (by the image encoder).
  TORCH_ARG(std::string, text) = "";
  TORCH_ARG(std::string, image) = "";
  /// How many nearest entries to return (fewer when the index holds fewer).
  TORCH_ARG(int64_t, k) = 10;
  /// What to rank: "images" (the index's image rows) or "texts" (its text rows).
  TORCH_ARG(std::string, target) = "images";
  /// The checkpoint that encodes the query; "" = the one the index records. It must be the model
  /// that wrote the index (same checkpoint content).
  TORCH_ARG(std::string, model_path) = "";
  /// The model's vocab.txt (text queries); "" = beside the checkpoint or in the folder above it.
  TORCH_ARG(std::string, vocab) = "";
};

/// One result: `rank` from 1, `score` the cosine similarity, `index` the row in the index, `item`
/// its image path or text.
struct SearchHit {
  int64_t rank = 0;
  double score = 0.0;
  int64_t index = 0;
  std::string item;
};

/// The k entries of the index nearest to the query, best first.
std::vector<SearchHit> search(const SearchOptions& options);

/// The top-k rows of `index` [N, d] by cosine similarity with `query` [d] (any float dtype), with
/// their scores: {indices [k], scores [k]}, best first, ties by row order.
std::pair<torch::Tensor, torch::Tensor> nearest(const torch::Tensor& index,
                                                const torch::Tensor& query, int64_t k);

}  // namespace convirt::pipeline
