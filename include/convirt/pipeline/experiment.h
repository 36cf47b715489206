#pragma once
// The paper's experiments as compositions of the library's stages: data (synthetic or real), the
// tokenizer, pretraining, and the evaluation protocols of Tables 1 and 2 and Figure 3. The
// `convirt` command line and the example programs are thin layers over these functions.

#include <convirt/data/datasets/labeled.h>
#include <convirt/data/datasets/paired.h>
#include <convirt/data/synthetic/generator.h>
#include <convirt/eval/encoder.h>
#include <convirt/eval/protocol.h>
#include <convirt/eval/tables.h>
#include <convirt/models/convirt.h>
#include <convirt/text/wordpiece.h>
#include <convirt/train/pretrainer.h>

#include <memory>
#include <string>
#include <vector>

namespace convirt::pipeline {

/// Writes the synthetic dataset into `dir` unless a complete one (marker file) is already there.
data::synthetic::SyntheticSummary ensure_synthetic(
    const std::string& dir, const data::synthetic::SyntheticOptions& options);

/// The paper's augmentation (section 4) ending at `size` px, for pretraining.
data::ImageTransform pretrain_transform(int64_t size);
/// Evaluation preprocessing: zero-pad to square, resize to `size` px (no randomness).
data::ImageTransform eval_transform(int64_t size);

/// MIMIC-CXR-JPG-layout pairs of one split ("train", "validate", "test"), `channels` per image.
std::shared_ptr<data::PairedDataset> load_pairs(const std::string& mimic_root,
                                                const std::string& split,
                                                data::ImageTransform transform, int64_t channels);

/// A WordPiece vocabulary of at most `vocab_size` entries built from the sentences of `corpus`,
/// saved to `vocab_path`; an existing vocab file at that path is reused.
std::shared_ptr<text::WordPieceTokenizer> build_tokenizer(const data::PairedDataset& corpus,
                                                          int64_t vocab_size,
                                                          const std::string& vocab_path);

/// Every image of a labelled dataset, decoded through its transform, with labels and masks, in
/// memory (the evaluation sets are small). Bad samples are skipped and reported. `with_groups` sets
/// patient ids as groups, for patient-level AUC (MURA).
eval::LabeledSet load_labeled(const data::LabeledDataset& dataset, int64_t threads = 0,
                              bool with_groups = false);

/// The frozen image encoder f_v of a model, as the evaluation protocols take it.
eval::Encoder image_encoder(models::ConVIRTModel model);

/// Projected image embeddings (encoder + projection head, eval mode, no gradient) of a stack of
/// preprocessed images, computed `batch_size` images at a time to bound memory.
/// Example:
///   auto emb = convirt::pipeline::image_embeddings(model, candidates.inputs);  // [N, d]
torch::Tensor image_embeddings(models::ConVIRTModel& model, const torch::Tensor& images,
                               int64_t batch_size = 128);

/// Options of the full reproduction (the README's main job).
struct ReproduceOptions {
  /// Run folder: data/, pretrain-<method>/, results.json, tables.md, figures.
  TORCH_ARG(std::string, out_dir) = "runs/demo";
  /// An existing synthetic dataset; "" generates one into out_dir/data.
  TORCH_ARG(std::string, data_dir) = "";
  TORCH_ARG(data::synthetic::SyntheticOptions, synthetic) = data::synthetic::SyntheticOptions();
  /// Model preset ("small" trains in minutes on 2 CPU cores; "paper" is the paper's model).
  TORCH_ARG(std::string, preset) = "small";
  TORCH_ARG(int64_t, vocab_size) = 2048;
  /// Model input side in pixels.
  TORCH_ARG(int64_t, image_size) = 64;
  /// Methods in the tables: "random", "convirt", "binary" (Contrastive-Binary-Loss), "imagenet"
  /// (needs imagenet_weights).
  TORCH_ARG(std::vector<std::string>, methods) = std::vector<std::string>{"random", "binary",
                                                                          "convirt"};
  /// torchvision ResNet state_dict (torch.save) for the ImageNet-init row; "" leaves it out.
  TORCH_ARG(std::string, imagenet_weights) = "";
  /// Pretraining budget per pretrained method, in steps (machine-independent and reproducible), or
  /// in wall seconds when pretrain_steps is 0.
  TORCH_ARG(int64_t, pretrain_steps) = 2400;
  TORCH_ARG(double, pretrain_seconds) = 0;
  TORCH_ARG(int64_t, eval_every) = 200;
  TORCH_ARG(int64_t, batch_size) = 32;
  /// Pretraining learning rate. The paper's 1e-4 starts from ImageNet and ClinicalBERT weights; the
  /// small preset trains from scratch, where 5e-4 reaches the same validation loss in fewer steps.
  TORCH_ARG(double, learning_rate) = 5e-4;
  /// Label fractions of the classification protocols (paper: 1%, 10%, all).
  TORCH_ARG(std::vector<double>, fractions) = std::vector<double>{0.01, 0.1, 1.0};
  /// Learning rate of the classifiers (paper: 1e-4 on datasets of 10^4-10^5 images; the demo's
  /// labelled sets are 100x smaller, where 1e-4 leaves a linear head under-trained at 1% labels).
  TORCH_ARG(double, classifier_learning_rate) = 1e-3;
  /// Seeds per cell (paper: 5).
  TORCH_ARG(int64_t, linear_seeds) = 5;
  TORCH_ARG(int64_t, finetune_seeds) = 1;
  /// Run the fine-tuning protocol (Table 1b); it costs most of the evaluation time.
  TORCH_ARG(bool, finetune) = true;
  /// Step budget of each fine-tuning run (after the head warm-up); 0 = the paper's epochs.
  TORCH_ARG(int64_t, finetune_steps) = 150;
  /// Head-only warm-up steps before the encoder is unfrozen (paper: 200).
  TORCH_ARG(int64_t, finetune_warmup_steps) = 50;
  TORCH_ARG(int64_t, threads) = 0;
  TORCH_ARG(int64_t, workers) = 2;
  TORCH_ARG(uint64_t, seed) = 0;
  TORCH_ARG(bool, verbose) = true;
};

struct ReproduceSummary {
  eval::Results results;
  std::string results_json;  ///< path of results.json
  std::string tables_md;     ///< path of tables.md
  std::string tables;        ///< the Markdown tables (also printed)
  std::string tsne_svg;      ///< path of the Figure 3 style t-SNE plot
  std::string report_md;     ///< path of report.md (tables and figures, see pipeline/report.h)
};

/// Generates (or reuses) the data, pretrains each method, runs the linear and fine-tuning protocols
/// on the labelled set, zero-shot classification from text prompts (pipeline/zero_shot.h),
/// zero-shot retrieval on the 8x200-style set and the t-SNE figure; writes
/// results.json, tables.md, the figures (t-SNE, label efficiency, pretraining curves) and report.md
/// into out_dir.
ReproduceSummary reproduce(const ReproduceOptions& options);

}  // namespace convirt::pipeline
