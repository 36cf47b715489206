#pragma once
// Zero-shot classification from text prompts: every label (or class) is described by sentences,
// the model's text encoder turns them into one class embedding, and an image is scored by the
// cosine similarity of its projected embedding with it. No label of the dataset is used except to
// compute the metric. The `convirt eval zeroshot` command, the main job's zero-shot row and the
// Python binding all call pipeline::zero_shot (or, with images already in memory,
// zero_shot_scores).

#include <convirt/eval/protocol.h>
#include <convirt/eval/tables.h>
#include <convirt/models/convirt.h>
#include <convirt/pipeline/evaluate.h>
#include <convirt/text/wordpiece.h>
#include <torch/arg.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace convirt::pipeline {

/// The sentences that describe one label. `positive` says the finding is there; `negative`
/// (optional, binary labels only) says it is not. With negatives, a binary label's score is
/// sim(image, positive) - sim(image, negative); a softmax over the two similarities is a monotone
/// function of that difference, so it would give the same AUC.
struct ClassPrompts {
  std::vector<std::string> positive;
  std::vector<std::string> negative;
};

/// Prompts for any number of labels, in the order of the file. The JSON format is
///   {"labels": {"Atelectasis": {"positive": ["..."], "negative": ["..."]}, ...}}
/// where "positive" is required and "negative" optional; both, when present, are non-empty lists of
/// non-empty strings. resources/prompts/default.json is the shipped example (default_prompts()).
///
/// Example:
///   auto prompts = convirt::pipeline::PromptSet::load("prompts.json");
///   const auto& p = prompts.at("Cardiomegaly");  // ValueError naming the label when absent
class PromptSet {
 public:
  PromptSet() = default;
  /// Adds (or replaces) the prompts of `label`; ValueError on an empty label or positive list.
  void set(const std::string& label, ClassPrompts prompts);
  /// The prompts of `label`: an exact match, else the one label that matches ignoring case
  /// (COVIDx's "pneumonia" finds "Pneumonia"). ValueError naming the label and the known ones.
  const ClassPrompts& at(const std::string& label) const;
  bool contains(const std::string& label) const;
  std::vector<std::string> labels() const;
  bool empty() const { return entries_.empty(); }

  /// Parses the JSON format above. `source` (a path or "prompts") starts every error message, which
  /// also names the label and key at fault.
  static PromptSet from_json(const std::string& text, const std::string& source = "prompts");
  static PromptSet load(const std::string& path);
  std::string to_json(int indent = 2) const;

 private:
  std::vector<std::pair<std::string, ClassPrompts>> entries_;
};

/// The prompts shipped with convirt (resources/prompts/default.json, compiled in): the CheXpert
/// labels (the paper's five, Pneumonia, Pneumothorax, Fracture, No Finding) worded like the reports
/// the model learns from, plus RSNA's Pneumonia, COVIDx's classes and MURA's Abnormal.
const PromptSet& default_prompts();

/// One embedding per prompt list: the projected text embeddings of the sentences, L2-normalised,
/// averaged and normalised again (a prompt ensemble). Returns [D] float32 on the model's device.
torch::Tensor prompt_embedding(models::ConVIRTModel& model,
                               const text::WordPieceTokenizer& tokenizer,
                               const std::vector<std::string>& sentences);

/// Zero-shot scores of images whose projected embeddings are `image_emb` [N, D] (unnormalised is
/// fine): multi-label, [N, L] with sim(positive) - sim(negative) per label (sim(positive) for a
/// label without negatives); multi-class, [N, C] with sim(positive) per class (argmax = the
/// prediction; negatives are not used). Cosine similarities; float32 on CPU.
///
/// Example:
///   auto emb = convirt::pipeline::image_embeddings(model, test.inputs);
///   auto scores = convirt::pipeline::zero_shot_scores(model, tokenizer, emb, {"Edema"},
///                                                     convirt::pipeline::default_prompts(),
///                                                     convirt::eval::ClassificationTask::kMultiLabel);
torch::Tensor zero_shot_scores(models::ConVIRTModel& model,
                               const text::WordPieceTokenizer& tokenizer,
                               const torch::Tensor& image_emb,
                               const std::vector<std::string>& labels, const PromptSet& prompts,
                               eval::ClassificationTask task);

/// What pipeline::zero_shot runs. The dataset options mean what they mean for
/// pipeline::EvaluateOptions; only the test split is read (RSNA's is carved out of the labels with
/// the same test_fraction and split_seed as pipeline::evaluate, so both report on the same images).
///
/// Example:
///   auto opts = convirt::pipeline::ZeroShotOptions("runs/mimic/model.pt")
///                   .dataset(convirt::pipeline::DatasetKind::kChexpert)
///                   .test_csv("/data/CheXpert-v1.0-small/valid.csv")
///                   .prompts_path("prompts.json");
///   auto result = convirt::pipeline::zero_shot(opts);  // result.metric: mean AUC in [0, 1]
struct ZeroShotOptions {
  explicit ZeroShotOptions(std::string model_path = "") : model_path_(std::move(model_path)) {}
  /// A convirt checkpoint (`convirt pretrain`'s model.pt).
  TORCH_ARG(std::string, model_path);
  /// The prompts use the vocabulary embedded in the model; a vocab.txt given here must be that
  /// same vocabulary. For a model without one: this file, or "" = vocab.txt beside the checkpoint
  /// or in the folder above it (see pipeline/model_text.h).
  TORCH_ARG(std::string, vocab) = "";
  /// A prompt file (PromptSet's JSON format); "" = `prompts`, or default_prompts() when that is
  /// empty too.
  TORCH_ARG(std::string, prompts_path) = "";
  /// Prompts given in code (used when prompts_path is "").
  TORCH_ARG(PromptSet, prompts) = PromptSet();
  /// Method name in the results; "" = the checkpoint's run folder (or file stem).
  TORCH_ARG(std::string, method_name) = "";
  TORCH_ARG(DatasetKind, dataset) = DatasetKind::kChexpert;
  /// CheXpert: the test CSV (valid.csv) and the folder its paths are relative to.
  TORCH_ARG(std::string, test_csv) = "";
  TORCH_ARG(std::string, image_root) = "";
  /// RSNA, COVIDx, MURA: the dataset folder (see EvaluateOptions::data_root).
  TORCH_ARG(std::string, data_root) = "";
  /// CheXpert label columns (default: the paper's five) and the uncertain-label policy.
  TORCH_ARG(std::vector<std::string>, labels) = std::vector<std::string>{};
  TORCH_ARG(std::string, uncertain) = "zeros";
  /// MURA: "patient" (the paper), "study" or "image".
  TORCH_ARG(std::string, mura_level) = "patient";
  /// Skip and count (instead of refusing) table rows that are ragged or hold invalid UTF-8, as
  /// EvaluateOptions::skip_bad_rows does.
  TORCH_ARG(bool, skip_bad_rows) = false;
  /// RSNA: the share of the labels that is the test set, and the split's seed.
  TORCH_ARG(double, test_fraction) = 0.1;
  TORCH_ARG(uint64_t, split_seed) = 0;
  /// Model input side in pixels; 0 = the checkpoint's configured image size.
  TORCH_ARG(int64_t, image_size) = 0;
  /// Images per forward pass.
  TORCH_ARG(int64_t, batch_size) = 64;
  /// Intra-op threads (0 = all cores) and image-decoding threads.
  TORCH_ARG(int64_t, threads) = 0;
  TORCH_ARG(int64_t, workers) = 2;
  TORCH_ARG(bool, verbose) = false;
};

/// What pipeline::zero_shot measured.
struct ZeroShotResult {
  std::string method;
  std::string task;         ///< task_name(dataset): "CheXpert", "RSNA", "COVIDx", "MURA"
  std::string metric_name;  ///< "mean_auc", "auc", "group_auc" or "accuracy"
  double metric = 0.0;      ///< in [0, 1]; NaN when undefined (one class only in the test set)
  std::vector<std::string> labels;  ///< the labels (classes) scored, in column order
  std::vector<double> per_label;    ///< AUC of each label (multi-label tasks; else empty)
  int64_t images = 0;               ///< test images scored
};

/// Loads the model, its vocabulary, the prompts and the test split of `dataset`, scores every
/// image and returns the protocol's metric: mean AUC over labels (CheXpert), AUC (RSNA), patient-
/// (or study-) level AUC (MURA), accuracy (COVIDx). ValueErrors name the option at fault, or the
/// label missing from the prompts.
ZeroShotResult zero_shot(const ZeroShotOptions& options);

/// Adds `result` (in percent) to `results` as {"zeroshot": {method: {task: value}}}.
void add_zero_shot(eval::Results& results, const ZeroShotResult& result);

}  // namespace convirt::pipeline
