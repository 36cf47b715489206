// Reports, label files and the on-disk layout of the synthetic dataset.

#include <convirt/core/check.h>
#include <convirt/data/csv.h>
#include <convirt/data/datasets/chexpert.h>
#include <convirt/data/datasets/mimic_cxr.h>
#include <convirt/data/datasets/retrieval.h>
#include <convirt/data/synthetic/generator.h>
#include <convirt/image/io.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "common.h"

namespace fs = std::filesystem;

namespace convirt::data::synthetic {
namespace {

// Columns of chexpert_all_labels().
constexpr int kNoFinding = 0, kCardiomegalyCol = 2, kLungOpacity = 3, kEdemaCol = 5,
              kConsolidation = 6, kPneumoniaCol = 7, kAtelectasisCol = 8, kPneumothoraxCol = 9,
              kEffusionCol = 10, kFractureCol = 12, kSupportDevices = 13;
constexpr int kColumnOf[kNumFindings] = {kAtelectasisCol, kCardiomegalyCol, kEdemaCol,
                                         kFractureCol,    kEffusionCol,     kPneumoniaCol,
                                         kPneumothoraxCol};

struct Pick {
  uint64_t state;
  explicit Pick(uint64_t s) : state(detail::mix64(s)) {}
  size_t operator()(size_t n) {
    return static_cast<size_t>(detail::bounded(state = detail::mix64(state), n));
  }
  bool chance(double p) {
    return static_cast<double>((state = detail::mix64(state)) >> 11) / 9007199254740992.0 < p;
  }
  template <typename T>
  const T& from(const std::vector<T>& v) {
    return v[(*this)(v.size())];
  }
};

std::string side_word(Side s) {
  return s == Side::kRight ? "right" : s == Side::kLeft ? "left" : "bilateral";
}
std::string cap(std::string s) {
  if (!s.empty()) s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
  return s;
}
std::string fill(std::string t, const std::vector<std::pair<std::string, std::string>>& vars) {
  for (const auto& [k, v] : vars) {
    for (size_t p; (p = t.find(k)) != std::string::npos;) t.replace(p, k.size(), v);
  }
  return cap(t);
}

const char* kSize[3] = {"small", "moderate", "large"};
const char* kMild[3] = {"mild", "moderate", "severe"};
const char* kZone[3] = {"upper", "middle", "lower"};
const char* kRib[6] = {"fourth", "fifth", "sixth", "seventh", "eighth", "ninth"};

// A positive (or, when hedged, uncertain) statement about one finding.
std::string positive(Finding f, const FindingState& s, Pick& pick) {
  const std::string side = side_word(s.side);
  const std::string size = kSize[s.severity], mild = kMild[s.severity];
  const std::string zone =
      s.side == Side::kLeft && s.position > 0.33 && s.position < 0.67
          ? "lingula"
          : std::string(kZone[std::clamp(static_cast<int>(s.position * 3), 0, 2)]) + " lobe";
  const std::string rib = kRib[std::clamp(static_cast<int>(s.position * 5.99), 0, 5)];
  const std::string eff = s.side == Side::kBilateral ? "effusions" : "effusion";
  std::vector<std::pair<std::string, std::string>> vars = {{"{side}", side}, {"{size}", size},
                                                           {"{mild}", mild}, {"{zone}", zone},
                                                           {"{rib}", rib},   {"{eff}", eff}};
  std::vector<std::string> t;
  if (s.uncertain) {
    switch (f) {
      case Finding::kAtelectasis:
        t = {"Possible {side} basilar atelectasis.",
             "Minimal {side} basilar opacity may reflect atelectasis."};
        break;
      case Finding::kCardiomegaly:
        t = {"The heart may be mildly enlarged.",
             "Possible mild cardiomegaly, accentuated by technique."};
        break;
      case Finding::kEdema:
        t = {"Possible mild pulmonary edema.",
             "Subtle perihilar haziness could reflect mild edema."};
        break;
      case Finding::kFracture:
        t = {"Possible nondisplaced {side} {rib} rib fracture.",
             "Questionable cortical irregularity of the {side} {rib} rib."};
        break;
      case Finding::kPleuralEffusion:
        t = {"Possible small {side} pleural {eff}.",
             "Blunting of the {side} costophrenic angle may reflect a small effusion."};
        break;
      case Finding::kPneumonia:
        t = {"Opacity in the {side} {zone} may represent pneumonia.",
             "Cannot exclude early pneumonia in the {side} {zone}."};
        break;
      case Finding::kPneumothorax:
        t = {"Cannot exclude a tiny {side} apical pneumothorax.",
             "Possible small {side} pneumothorax."};
        break;
    }
    return fill(pick.from(t), vars);
  }
  switch (f) {
    case Finding::kAtelectasis:
      t = {"{side} basilar plate-like atelectasis.",
           "Linear opacity at the {side} lung base, likely atelectasis.",
           "There is {mild} {side} basal atelectasis.",
           "Subsegmental atelectasis in the {side} lower lung."};
      break;
    case Finding::kCardiomegaly:
      t = {"The heart is {mild}ly enlarged.", "{mild} cardiomegaly.",
           "Cardiac silhouette is enlarged.",
           "There is {mild} enlargement of the cardiac silhouette."};
      if (s.severity == 2) vars[2].second = "severe";
      break;
    case Finding::kEdema:
      t = {"There is {mild} pulmonary edema.",
           "Perihilar haziness and vascular congestion consistent with {mild} edema.",
           "{mild} interstitial pulmonary edema.",
           "Findings are compatible with {mild} pulmonary edema."};
      break;
    case Finding::kFracture:
      t = {"Acute fracture of the {side} {rib} rib.",
           "There is a displaced {side} posterior {rib} rib fracture.",
           "{side} {rib} posterior rib fracture is noted."};
      break;
    case Finding::kPleuralEffusion:
      t = {"{size} {side} pleural {eff}.",
           "There is a {size} {side} pleural {eff} with blunting of the costophrenic angle.",
           "{side} pleural {eff}, {size} in size.", "A {size} {side} pleural {eff} is present."};
      break;
    case Finding::kPneumonia:
      t = {"Focal consolidation in the {side} {zone} concerning for pneumonia.",
           "{side} {zone} opacity consistent with pneumonia.",
           "Airspace consolidation in the {side} {zone}, compatible with pneumonia."};
      break;
    case Finding::kPneumothorax:
      t = {"{size} {side} apical pneumothorax.", "There is a {size} {side} pneumothorax.",
           "{side} pneumothorax with a visible pleural line, {size} in size."};
      break;
  }
  return fill(pick.from(t), vars);  // "{mild}ly" gives mildly / moderately / severely
}

std::string negative(Finding f, Pick& pick) {
  std::vector<std::string> t;
  switch (f) {
    case Finding::kAtelectasis:
      t = {"No atelectasis.", "No focal atelectasis."};
      break;
    case Finding::kCardiomegaly:
      t = {"Heart size is normal.", "The cardiac silhouette is within normal limits.",
           "Normal heart size."};
      break;
    case Finding::kEdema:
      t = {"No pulmonary edema.", "There is no pulmonary vascular congestion.",
           "No evidence of edema."};
      break;
    case Finding::kFracture:
      t = {"No acute osseous abnormality.", "No displaced rib fracture.",
           "Osseous structures are intact."};
      break;
    case Finding::kPleuralEffusion:
      t = {"No pleural effusion.", "There is no pleural effusion.",
           "Costophrenic angles are sharp."};
      break;
    case Finding::kPneumonia:
      t = {"No focal consolidation.", "No focal consolidation to suggest pneumonia."};
      break;
    case Finding::kPneumothorax:
      t = {"No pneumothorax.", "There is no pneumothorax.", "No pneumothorax is seen."};
      break;
  }
  return pick.from(t);
}

std::string device_sentence(int device, Pick& pick) {
  static const std::vector<std::vector<std::string>> t = {
      {"Endotracheal tube terminates approximately 4 cm above the carina.",
       "ET tube is in standard position."},
      {"Right internal jugular central venous catheter tip in the mid SVC.",
       "Central line with tip at the cavoatrial junction."},
      {"Left chest wall pacemaker with lead in the right ventricle.",
       "Cardiac pacing device with a single lead is unchanged."}};
  return pick.from(t[static_cast<size_t>(device)]);
}

// MIMIC reports are wrapped at a fixed width with a leading space.
std::string wrap(const std::string& text, size_t width = 72) {
  std::string out, line;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t sp = text.find(' ', pos);
    std::string word = text.substr(pos, sp == std::string::npos ? std::string::npos : sp - pos);
    pos = sp == std::string::npos ? text.size() : sp + 1;
    if (!line.empty() && line.size() + 1 + word.size() > width) {
      out += " " + line + "\n";
      line.clear();
    }
    line += (line.empty() ? "" : " ") + word;
  }
  if (!line.empty()) out += " " + line + "\n";
  return out;
}

std::string fmt_label(double v) {
  if (std::isnan(v)) return "";
  return v > 0.5 ? "1.0" : v < -0.5 ? "-1.0" : "0.0";
}

}  // namespace

std::vector<double> case_labels(const Case& c) {
  std::vector<double> l(14, 0.0);
  for (int f = 0; f < kNumFindings; ++f)
    l[kColumnOf[f]] = c.findings[static_cast<size_t>(f)].present ? 1.0 : 0.0;
  l[kConsolidation] = l[kPneumoniaCol];
  l[kLungOpacity] = (l[kPneumoniaCol] + l[kAtelectasisCol] + l[kEdemaCol]) > 0 ? 1.0 : 0.0;
  l[kNoFinding] = c.any() ? 0.0 : 1.0;
  l[kSupportDevices] = c.device >= 0 ? 1.0 : 0.0;
  return l;
}

std::string write_report(const Case& c, uint64_t seed, std::vector<double>* labels) {
  Pick pick(seed);
  std::vector<double> lab(14, std::nan(""));
  std::vector<std::string> findings, impression;
  if (c.device >= 0) {
    findings.push_back(device_sentence(c.device, pick));
    lab[kSupportDevices] = 1.0;
  }
  // Radiologists report organ by organ: heart, lungs, pleura, bones.
  const Finding order[] = {
      Finding::kCardiomegaly,    Finding::kEdema,        Finding::kPneumonia, Finding::kAtelectasis,
      Finding::kPleuralEffusion, Finding::kPneumothorax, Finding::kFracture};
  bool any_positive = false;
  for (Finding f : order) {
    const auto& s = c[f];
    const int col = kColumnOf[static_cast<int>(f)];
    if (s.present) {
      std::string sent = positive(f, s, pick);
      findings.push_back(sent);
      if (!s.uncertain || pick.chance(0.5)) impression.push_back(sent);
      lab[col] = s.uncertain ? -1.0 : 1.0;
      any_positive = true;
    } else if (pick.chance(f == Finding::kAtelectasis || f == Finding::kFracture ? 0.25 : 0.6)) {
      findings.push_back(negative(f, pick));
      lab[col] = 0.0;
    }
    if (f == Finding::kCardiomegaly && pick.chance(0.5))
      findings.push_back("Mediastinal and hilar contours are unremarkable.");
  }
  if (!c[Finding::kPneumonia].present && !c[Finding::kEdema].present &&
      !c[Finding::kAtelectasis].present && pick.chance(0.5)) {
    findings.push_back(pick.from(
        std::vector<std::string>{"The lungs are clear.", "Lungs are well expanded and clear."}));
  }
  if (!any_positive) {
    impression.push_back(pick.from(std::vector<std::string>{"No acute cardiopulmonary process.",
                                                            "No acute intrathoracic abnormality.",
                                                            "Normal chest radiograph."}));
    lab[kNoFinding] = 1.0;
  }
  if (!std::isnan(lab[kPneumoniaCol])) lab[kConsolidation] = lab[kPneumoniaCol];
  for (int col : {kEdemaCol, kPneumoniaCol, kAtelectasisCol}) {
    if (!std::isnan(lab[col]) && lab[col] != 0.0)
      lab[kLungOpacity] =
          std::max(std::isnan(lab[kLungOpacity]) ? -1.0 : lab[kLungOpacity], lab[col]);
  }
  std::string imp;
  if (impression.size() > 1 && pick.chance(0.5)) {
    for (size_t i = 0; i < impression.size(); ++i)
      imp += std::to_string(i + 1) + ". " + impression[i] + "\n";
  } else {
    for (const auto& s : impression) imp += (imp.empty() ? "" : " ") + s;
    imp = wrap(imp);
  }
  std::string fnd;
  for (const auto& s : findings) fnd += (fnd.empty() ? "" : " ") + s;
  // Some reports lack one of the two sections, as in MIMIC-CXR.
  const double r = static_cast<double>(pick(1000)) / 1000.0;
  const bool no_findings = r < 0.08, no_impression = r >= 0.08 && r < 0.14;
  std::string out = "                                 FINAL REPORT\n";
  out +=
      " EXAMINATION:  CHEST (" + std::string(c.ap_view ? "PORTABLE AP" : "PA AND LAT") + ")\n \n";
  out += " INDICATION:  ___ year old " + std::string(c.female ? "woman" : "man") + " with " +
         pick.from(std::vector<std::string>{"cough", "shortness of breath", "fever", "chest pain",
                                            "follow-up"}) +
         ".\n \n";
  out += " TECHNIQUE:  " +
         std::string(c.ap_view ? "Portable AP view of the chest."
                               : "PA and lateral views of the chest.") +
         "\n \n";
  out += " COMPARISON:  " +
         pick.from(std::vector<std::string>{"None.", "Prior study from ___.", "None available."}) +
         "\n \n";
  if (!no_findings) out += " FINDINGS:\n \n" + wrap(fnd) + " \n";
  if (!no_impression) out += " IMPRESSION:\n \n" + imp;
  if (labels) *labels = lab;
  return out;
}

std::vector<std::string> text_queries(int category, int64_t count, uint64_t seed) {
  CONVIRT_CHECK_VALUE(category >= 0 && category <= kNumFindings,
                      "text_queries: category must be in [0, ", kNumFindings, "], got ", category);
  std::vector<std::string> out;
  Pick pick(seed);
  for (int attempt = 0; static_cast<int64_t>(out.size()) < count && attempt < 1000; ++attempt) {
    std::string s;
    if (category == kNumFindings) {
      s = pick.from(std::vector<std::string>{
          "No acute cardiopulmonary process.", "The lungs are clear.",
          "No acute intrathoracic abnormality.", "Normal chest radiograph.",
          "Heart size is normal and the lungs are clear.", "No pleural effusion or pneumothorax.",
          "Lungs are well expanded and clear."});
    } else {
      FindingState st;
      st.present = true;
      st.side = static_cast<Side>(pick(3));
      if (category == static_cast<int>(Finding::kEdema) ||
          category == static_cast<int>(Finding::kCardiomegaly)) {
        st.side = Side::kBilateral;
      }
      if (category == static_cast<int>(Finding::kFracture) ||
          category == static_cast<int>(Finding::kPneumothorax)) {
        st.side = pick.chance(0.5) ? Side::kLeft : Side::kRight;
      }
      st.severity = static_cast<int>(pick(3));
      st.position = static_cast<double>(pick(100)) / 100.0;
      s = positive(static_cast<Finding>(category), st, pick);
    }
    if (std::find(out.begin(), out.end(), s) == out.end()) out.push_back(s);
  }
  return out;
}

SyntheticSummary generate(const SyntheticOptions& o, const std::string& out_dir) {
  CONVIRT_CHECK_VALUE(o.image_size() >= 32, "SyntheticOptions: image_size must be >= 32, got ",
                      o.image_size());
  CONVIRT_CHECK_VALUE(o.image_format() == "jpg" || o.image_format() == "png",
                      "SyntheticOptions: image_format must be 'jpg' or 'png', got '",
                      o.image_format(), "'");
  for (auto [name, v] : {std::pair<const char*, int64_t>{"train_studies", o.train_studies()},
                         {"validate_studies", o.validate_studies()},
                         {"test_studies", o.test_studies()},
                         {"chexpert_train", o.chexpert_train()},
                         {"chexpert_valid", o.chexpert_valid()},
                         {"retrieval_candidates", o.retrieval_candidates()},
                         {"retrieval_image_queries", o.retrieval_image_queries()},
                         {"retrieval_text_queries", o.retrieval_text_queries()}}) {
    CONVIRT_CHECK_VALUE(v >= 0, "SyntheticOptions: ", name, " must be >= 0, got ", v);
  }
  CONVIRT_CHECK_VALUE(o.difficulty() >= 0 && o.difficulty() <= 1,
                      "SyntheticOptions: difficulty must be in [0, 1], got ", o.difficulty());
  const fs::path root(out_dir);
  SyntheticSummary sum;
  sum.root = root.string();
  sum.mimic_root = (root / "mimic-cxr-jpg").string();
  sum.chexpert_root = (root / "chexpert").string();
  const fs::path cx = fs::path(sum.chexpert_root) / "CheXpert-v1.0-small";
  sum.chexpert_train_csv = (cx / "train.csv").string();
  sum.chexpert_valid_csv = (cx / "valid.csv").string();
  sum.retrieval_dir = (root / "chexpert-8x200").string();
  fs::create_directories(sum.mimic_root);
  fs::create_directories(cx);
  fs::create_directories(fs::path(sum.retrieval_dir) / "image-retrieval");
  fs::create_directories(fs::path(sum.retrieval_dir) / "text-retrieval");
  const std::string ext = "." + o.image_format();
  const int64_t S = o.image_size();
  const double diff = o.difficulty();
  auto save = [&](const fs::path& p, const at::Tensor& img) {
    fs::create_directories(p.parent_path());
    if (o.image_format() == "png") {
      image::write_png(p.string(), img);
    } else {
      image::write_jpeg(p.string(), img, 95);
    }
  };
  const int64_t threads =
      o.threads() > 0 ? o.threads() : std::max<int64_t>(1, std::thread::hardware_concurrency());
  auto parallel = [&](int64_t n, const std::function<void(int64_t)>& fn) {
    std::atomic<int64_t> next{0};
    std::exception_ptr err;
    std::mutex m;
    std::vector<std::thread> pool;
    for (int64_t t = 0; t < std::min(threads, std::max<int64_t>(n, 1)); ++t) {
      pool.emplace_back([&] {
        for (int64_t i; (i = next++) < n;) {
          try {
            fn(i);
          } catch (...) {
            std::lock_guard<std::mutex> lock(m);
            if (!err) err = std::current_exception();
            next = n;
          }
        }
      });
    }
    for (auto& th : pool) th.join();
    if (err) std::rethrow_exception(err);
  };
  const auto chex_cols = chexpert_all_labels();

  // 1. MIMIC-CXR-JPG layout.
  const int64_t n_studies = o.train_studies() + o.validate_studies() + o.test_studies();
  std::vector<std::vector<std::string>> meta_rows(static_cast<size_t>(n_studies)),
      split_rows(meta_rows.size());
  std::vector<std::string> label_rows(meta_rows.size());
  std::atomic<int64_t> mimic_images{0};
  parallel(n_studies, [&](int64_t i) {
    const uint64_t cs = detail::mix64(detail::mix64(o.seed(), 1), static_cast<uint64_t>(i));
    Case c = sample_case(o, cs);
    const std::string subject = std::to_string(10000000 + i / 2);  // some subjects have two studies
    const std::string study = std::to_string(50000000 + i);
    const std::string split = i < o.train_studies()                          ? "train"
                              : i < o.train_studies() + o.validate_studies() ? "validate"
                                                                             : "test";
    const fs::path dir = fs::path(sum.mimic_root) / mimic_study_dir(subject, study);
    std::vector<double> labels;
    const std::string report = write_report(c, detail::mix64(cs, 7), &labels);
    fs::create_directories(dir);
    std::ofstream(dir.string() + ".txt", std::ios::binary) << report;
    const bool lateral = Pick(detail::mix64(cs, 9)).chance(o.lateral_fraction());
    std::string meta, spl;
    for (int v = 0; v < (lateral ? 2 : 1); ++v) {
      char id[48];
      std::snprintf(id, sizeof id, "%08llx-%08llx-%08llx-%08llx-%08llx",
                    static_cast<unsigned long long>(detail::mix64(cs, 100 + v) & 0xffffffffULL),
                    static_cast<unsigned long long>(detail::mix64(cs, 200 + v) & 0xffffffffULL),
                    static_cast<unsigned long long>(detail::mix64(cs, 300 + v) & 0xffffffffULL),
                    static_cast<unsigned long long>(detail::mix64(cs, 400 + v) & 0xffffffffULL),
                    static_cast<unsigned long long>(detail::mix64(cs, 500 + v) & 0xffffffffULL));
      save(dir / (std::string(id) + ext), render(c, S, v == 1, diff));
      const std::string view = v == 1 ? "LATERAL" : c.ap_view ? "AP" : "PA";
      meta +=
          csv_line({id, subject, study, c.ap_view ? "CHEST (PORTABLE AP)" : "CHEST (PA AND LAT)",
                    view, std::to_string(S), std::to_string(S), "21800101", "120000.000"}) +
          "\n";
      spl += csv_line({id, study, subject, split}) + "\n";
      ++mimic_images;
    }
    meta_rows[static_cast<size_t>(i)] = {meta};
    split_rows[static_cast<size_t>(i)] = {spl};
    // mimic-cxr-2.0.0-chexpert.csv orders its 14 columns alphabetically.
    std::vector<std::pair<std::string, double>> named;
    for (size_t k = 0; k < chex_cols.size(); ++k) named.emplace_back(chex_cols[k], labels[k]);
    std::sort(named.begin(), named.end());
    std::string row = subject + "," + study;
    for (const auto& [n, v] : named) row += "," + fmt_label(v);
    label_rows[static_cast<size_t>(i)] = row + "\n";
  });
  {
    std::ofstream meta(fs::path(sum.mimic_root) / "mimic-cxr-2.0.0-metadata.csv");
    meta << "dicom_id,subject_id,study_id,PerformedProcedureStepDescription,ViewPosition,Rows,"
            "Columns,StudyDate,StudyTime\n";
    for (const auto& r : meta_rows) meta << r[0];
    std::ofstream split(fs::path(sum.mimic_root) / "mimic-cxr-2.0.0-split.csv");
    split << "dicom_id,study_id,subject_id,split\n";
    for (const auto& r : split_rows) split << r[0];
    std::ofstream lab(fs::path(sum.mimic_root) / "mimic-cxr-2.0.0-chexpert.csv");
    auto sorted = chex_cols;
    std::sort(sorted.begin(), sorted.end());
    lab << "subject_id,study_id";
    for (const auto& c : sorted) lab << "," << c;
    lab << "\n";
    for (const auto& r : label_rows) lab << r;
  }
  sum.studies = n_studies;
  sum.mimic_images = mimic_images;

  // 2. CheXpert-style labelled set: report-derived labels for train, ground truth for valid.
  const std::string header = "Path,Sex,Age,Frontal/Lateral,AP/PA";
  auto chexpert_row = [&](const std::string& rel, const Case& c,
                          const std::vector<double>& labels) {
    std::string row = csv_line({rel, c.female ? "Female" : "Male", std::to_string(c.age), "Frontal",
                                c.ap_view ? "AP" : "PA"});
    for (double v : labels) row += "," + fmt_label(v);
    return row + "\n";
  };
  std::string header_line = header;
  for (const auto& c : chex_cols) header_line += "," + csv_escape(c);
  header_line += "\n";
  for (int part = 0; part < 2; ++part) {
    const int64_t n = part == 0 ? o.chexpert_train() : o.chexpert_valid();
    const std::string split = part == 0 ? "train" : "valid";
    std::vector<std::string> rows(static_cast<size_t>(n));
    parallel(n, [&](int64_t i) {
      const uint64_t cs = detail::mix64(detail::mix64(o.seed(), 2 + static_cast<uint64_t>(part)),
                                        static_cast<uint64_t>(i));
      Case c = sample_case(o, cs);
      const int64_t patient = (part == 0 ? 1 : 70001) + i;
      char buf[96];
      std::snprintf(buf, sizeof buf, "CheXpert-v1.0-small/%s/patient%05lld/study1/view1_frontal%s",
                    split.c_str(), static_cast<long long>(patient), ext.c_str());
      save(fs::path(sum.chexpert_root) / buf, render(c, S, false, diff));
      std::vector<double> labels;
      write_report(c, detail::mix64(cs, 7), &labels);
      rows[static_cast<size_t>(i)] = chexpert_row(buf, c, part == 0 ? labels : case_labels(c));
    });
    std::ofstream out(part == 0 ? sum.chexpert_train_csv : sum.chexpert_valid_csv);
    out << header_line;
    for (const auto& r : rows) out << r;
  }
  sum.chexpert_images = o.chexpert_train() + o.chexpert_valid();

  // 3. 8x200-style retrieval set: candidates positive for exactly one category, image and text
  // queries.
  const auto cats = retrieval_categories();
  const int64_t per = o.retrieval_candidates() + o.retrieval_image_queries();
  std::vector<std::string> cand_rows(static_cast<size_t>(per * 8)), query_rows(cand_rows.size());
  const auto names = finding_names();
  parallel(per * 8, [&](int64_t i) {
    const int64_t cat = i / per, k = i % per;
    // Category index k of retrieval_categories() -> generator finding (7 = no finding).
    int only = kNumFindings;
    for (int f = 0; f < kNumFindings; ++f) {
      if (names[static_cast<size_t>(f)] == cats[static_cast<size_t>(cat)]) only = f;
    }
    const uint64_t cs = detail::mix64(detail::mix64(o.seed(), 4), static_cast<uint64_t>(i));
    Case c = sample_case(o, cs, only);
    char buf[96];
    std::snprintf(buf, sizeof buf, "CheXpert-v1.0-small/train/patient%05lld/study1/view1_frontal%s",
                  static_cast<long long>(80001 + i), ext.c_str());
    save(fs::path(sum.chexpert_root) / buf, render(c, S, false, diff));
    if (k < o.retrieval_candidates()) {
      cand_rows[static_cast<size_t>(i)] = chexpert_row(buf, c, case_labels(c));
    } else {
      query_rows[static_cast<size_t>(i)] = csv_line({cats[static_cast<size_t>(cat)], buf}) + "\n";
    }
  });
  {
    const fs::path rd(sum.retrieval_dir);
    std::ofstream cand(rd / "image-retrieval" / "candidate.csv"),
        tcand(rd / "text-retrieval" / "candidate.csv");
    cand << header_line;
    tcand << header_line;
    for (const auto& r : cand_rows) cand << r, tcand << r;
    std::ofstream q(rd / "image-retrieval" / "query.csv");
    q << "Variable,Path\n";
    for (const auto& r : query_rows) q << r;
    std::ofstream tq(rd / "text-retrieval" / "query.csv");
    tq << "Variable,Text\n";
    for (size_t cat = 0; cat < cats.size(); ++cat) {
      int only = kNumFindings;
      for (int f = 0; f < kNumFindings; ++f) {
        if (names[static_cast<size_t>(f)] == cats[cat]) only = f;
      }
      for (const auto& s :
           text_queries(only, o.retrieval_text_queries(), detail::mix64(o.seed(), 50 + cat))) {
        tq << csv_line({cats[cat], s}) << "\n";
        ++sum.text_queries;
      }
    }
  }
  sum.retrieval_images = per * 8;
  return sum;
}

}  // namespace convirt::data::synthetic
