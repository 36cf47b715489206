#pragma once
// A seeded generator of chest-X-ray-like images with radiology-style reports (the embedded default
// dataset). Every finding is drawn in the image where a radiologist would look for it and stated in
// the report (with location, size, negation and uncertainty), so text supervision teaches image
// features that transfer to the labelled tasks. Written in the MIMIC-CXR-JPG layout, plus a
// CheXpert-style labelled set and a CheXpert 8x200-style retrieval set (see docs/data.md).

#include <ATen/ATen.h>
#include <torch/arg.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace convirt::data::synthetic {

/// The seven findings (CheXpert names), in this order everywhere.
enum class Finding : int {
  kAtelectasis = 0,
  kCardiomegaly,
  kEdema,
  kFracture,
  kPleuralEffusion,
  kPneumonia,
  kPneumothorax,
};
constexpr int kNumFindings = 7;
/// "Atelectasis", "Cardiomegaly", "Edema", "Fracture", "Pleural Effusion", "Pneumonia",
/// "Pneumothorax".
std::vector<std::string> finding_names();

/// The patient's side (image left is the patient's right, as on a PA radiograph).
enum class Side : int { kRight = 0, kLeft, kBilateral };

/// One finding of a case.
struct FindingState {
  bool present = false;
  bool uncertain = false;  ///< stated with hedging ("possible ..."); drawn mild; CheXpert label -1
  Side side = Side::kRight;
  int severity = 0;       ///< 0 small/mild, 1 moderate, 2 large/severe
  double position = 0.5;  ///< finding-specific placement in [0, 1] (lung zone, rib, ...)
};

/// Everything that determines one synthetic study, drawn by sample_case().
struct Case {
  std::array<FindingState, kNumFindings> findings{};
  int device = -1;       ///< -1 none, 0 endotracheal tube, 1 central line, 2 pacemaker
  bool ap_view = false;  ///< AP (portable) rather than PA
  bool female = false;
  int age = 60;
  double rotation_deg = 0;  ///< positioning: in-plane rotation, shift and scale
  double shift_x = 0, shift_y = 0, scale = 1;
  double body_width = 1;  ///< habitus
  double exposure = 1;    ///< global gain
  uint64_t seed = 0;      ///< texture (vessels, noise) of the rendered images
  bool any() const;
  const FindingState& operator[](Finding f) const { return findings[static_cast<size_t>(f)]; }
  FindingState& operator[](Finding f) { return findings[static_cast<size_t>(f)]; }
};

/// Options of the generator. The defaults make a set a 2-core machine pretrains on in minutes.
/// Example:
///   auto opts =
///   convirt::data::synthetic::SyntheticOptions().train_studies(500).image_size(64).seed(1); auto
///   summary = convirt::data::synthetic::generate(opts, "/tmp/synth");
struct SyntheticOptions {
  /// MIMIC-CXR-JPG-style paired set: studies per split.
  TORCH_ARG(int64_t, train_studies) = 3000;
  TORCH_ARG(int64_t, validate_studies) = 150;
  TORCH_ARG(int64_t, test_studies) = 150;
  /// Fraction of studies that also have a lateral view (one view is sampled per study per step).
  TORCH_ARG(double, lateral_fraction) = 0.3;
  /// CheXpert-style labelled set (train.csv labels come from the report, with -1 for hedged
  /// findings and blanks for unmentioned ones; valid.csv holds the ground truth, as CheXpert's
  /// expert labels).
  TORCH_ARG(int64_t, chexpert_train) = 1500;
  TORCH_ARG(int64_t, chexpert_valid) = 300;
  /// 8x200-style retrieval set: candidates per category (official: 200), image and text queries per
  /// category (official: 10 and 5).
  TORCH_ARG(int64_t, retrieval_candidates) = 40;
  TORCH_ARG(int64_t, retrieval_image_queries) = 10;
  TORCH_ARG(int64_t, retrieval_text_queries) = 5;
  /// Side of the square images in pixels (>= 32).
  TORCH_ARG(int64_t, image_size) = 128;
  /// "jpg" (the MIMIC-CXR-JPG layout) or "png".
  TORCH_ARG(std::string, image_format) = "jpg";
  /// 0 (findings large and clear, little noise) .. 1 (subtle findings, strong noise and
  /// positioning).
  TORCH_ARG(double, difficulty) = 0.5;
  /// Probability that a finding is present (each of the seven, before correlations).
  TORCH_ARG(double, prevalence) = 0.18;
  /// Fraction of present findings that are hedged in the report.
  TORCH_ARG(double, uncertain_fraction) = 0.1;
  /// Probability of a support device (distractor).
  TORCH_ARG(double, device_fraction) = 0.25;
  TORCH_ARG(uint64_t, seed) = 0;
  /// Rendering threads; 0 = hardware concurrency.
  TORCH_ARG(int64_t, threads) = 0;
};

/// What generate() wrote.
struct SyntheticSummary {
  std::string root;
  std::string mimic_root;          ///< MIMIC-CXR-JPG layout (MimicCxrDataset root)
  std::string chexpert_root;       ///< folder holding CheXpert-v1.0-small/
  std::string chexpert_train_csv;  ///< ChexpertDataset input
  std::string chexpert_valid_csv;
  std::string retrieval_dir;  ///< RetrievalSet input (image_root = chexpert_root)
  int64_t studies = 0;
  int64_t mimic_images = 0;
  int64_t chexpert_images = 0;
  int64_t retrieval_images = 0;
  int64_t text_queries = 0;
};

/// Draws a case. `only` >= 0 forces exactly that finding (0..6) and nothing else, 7 forces no
/// finding (the retrieval categories); -1 samples findings at the options' prevalence.
Case sample_case(const SyntheticOptions& options, uint64_t seed, int only = -1);

/// Renders a frontal (or lateral) view of a case: [1, size, size] float32 in [0, 1].
at::Tensor render(const Case& c, int64_t size, bool lateral, double difficulty);

/// A MIMIC-style free-text report for a case (FINAL REPORT, EXAMINATION, INDICATION, TECHNIQUE,
/// COMPARISON, FINDINGS, IMPRESSION), wrapped at ~72 columns. Phrasing, the order of statements,
/// which normal statements appear and whether a section is missing are drawn from `seed`.
/// `labels`, when given, receives the CheXpert-labeler reading of the report for the 14 CheXpert
/// columns (1 positive, -1 uncertain, 0 negated, NaN unmentioned).
std::string write_report(const Case& c, uint64_t seed, std::vector<double>* labels = nullptr);

/// The ground-truth CheXpert 14-column labels of a case (1 / 0; No Finding = no finding of the
/// seven).
std::vector<double> case_labels(const Case& c);

/// `count` different text queries for a retrieval category (0..6 a finding, 7 No Finding).
std::vector<std::string> text_queries(int category, int64_t count, uint64_t seed);

/// Writes the whole synthetic dataset under `out_dir` (created; existing files are overwritten).
SyntheticSummary generate(const SyntheticOptions& options, const std::string& out_dir);

}  // namespace convirt::data::synthetic
