#pragma once
// Tiny on-disk datasets in the formats of the paper's labelled sets (COVIDx, MURA, RSNA, CheXpert)
// and a small untrained checkpoint, for the tests of pipeline::evaluate and the `convirt` program.
// The class of every image is the brightness of one horizontal band, so a classifier can learn it.

#include <convirt/data/datasets/chexpert.h>
#include <convirt/image/io.h>
#include <convirt/io/checkpoint.h>
#include <convirt/models/convirt.h>
#include <convirt/models/presets.h>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "test_util.h"
#include "tiny_model.h"

namespace convirt::test {

inline void write_text_file(const std::filesystem::path& p, const std::string& text) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

// A 16x16 grey image whose bright band is band `c` of 3.
inline torch::Tensor band_image(int64_t c, int64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(seed));
  auto x = 0.3 + 0.1 * at::rand({1, 16, 16}, gen);
  x[0].narrow(0, c * 5, 5).add_(0.5);
  return x.clamp(0, 1).to(torch::kFloat);
}

inline void write_band_png(const std::filesystem::path& p, int64_t c, int64_t seed) {
  std::filesystem::create_directories(p.parent_path());
  image::write_png(p.string(), band_image(c, seed));
}

/// An untrained small-preset checkpoint at 32 px (fast to run), saved to `path`.
inline void write_small_model(const std::string& path) {
  torch::manual_seed(0);
  auto config = models::small_preset(64);
  config.image_size(32);
  auto model = models::make_convirt(config);
  io::save_convirt(*model, path);
}

#ifdef CONVIRT_CLI_PATH
/// What a run of the `convirt` program gave: its exit status and its stdout + stderr.
struct CliRun {
  int status = -1;
  std::string output;
};

/// Runs `convirt ARGS` (a shell-quoted argument string), its output captured in `log`.
inline CliRun run_convirt(const std::string& args, const std::filesystem::path& log) {
  const std::string cmd =
      std::string("'") + CONVIRT_CLI_PATH + "' " + args + " > '" + log.string() + "' 2>&1";
  const int raw = std::system(cmd.c_str());
  CliRun r;
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  r.output = read_text(log);
  return r;
}
#endif

/// COVIDx v4 layout under `root`: train.txt / test.txt and the images in train/ and test/.
inline void write_covidx(const std::filesystem::path& root, int64_t train = 48, int64_t test = 24) {
  const char* classes[] = {"COVID-19", "pneumonia", "normal"};
  for (const auto& [split, n] : {std::pair<std::string, int64_t>{"train", train}, {"test", test}}) {
    std::string lines;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t c = i % 3;
      const std::string file = split + std::to_string(i) + ".png";
      write_band_png(root / split / file, c, i + (split == "test" ? 1000 : 0));
      lines += "p" + split + std::to_string(i) + " " + file + " " + classes[c] + " src\n";
    }
    write_text_file(root / (split + ".txt"), lines);
  }
}

/// MURA-v1.1 under `root`: `patients` patients per split, two studies each (one of them abnormal
/// for odd patients), two images per study; abnormal images are bright in band 0.
inline void write_mura(const std::filesystem::path& root, int64_t patients = 12) {
  const auto m = root / "MURA-v1.1";
  for (const std::string split : {"train", "valid"}) {
    std::string studies, paths;
    for (int64_t p = 0; p < patients; ++p) {
      for (int64_t s = 0; s < 2; ++s) {
        const bool abnormal = p % 2 == 1 && s == 0;
        const std::string study = "MURA-v1.1/" + split + "/XR_WRIST/patient" + split +
                                  std::to_string(p) + "/study" + std::to_string(s + 1) +
                                  (abnormal ? "_positive/" : "_negative/");
        studies += study + "," + (abnormal ? "1" : "0") + "\n";
        for (int64_t i = 0; i < 2; ++i) {
          const std::string image = study + "image" + std::to_string(i + 1) + ".png";
          paths += image + "\n";
          write_band_png(root / image, abnormal ? 0 : 2, p * 10 + s * 2 + i);
        }
      }
    }
    write_text_file(m / (split + "_labeled_studies.csv"), studies);
    write_text_file(m / (split + "_image_paths.csv"), paths);
  }
}

/// RSNA layout under `root`: stage_2_train_labels.csv and one DICOM per patient.
inline void write_rsna(const std::filesystem::path& root, int64_t patients = 60) {
  std::string csv = "patientId,x,y,width,height,Target\n";
  std::filesystem::create_directories(root / "stage_2_train_images");
  for (int64_t p = 0; p < patients; ++p) {
    const bool pneumonia = p % 3 == 0;
    const std::string id = "pt" + std::to_string(p);
    csv += id + (pneumonia ? ",10,10,5,5,1\n" : ",,,,,0\n");
    auto px = (band_image(pneumonia ? 0 : 2, p) * 4000).to(torch::kInt16)[0];
    image::write_dicom((root / "stage_2_train_images" / (id + ".dcm")).string(), px,
                       image::WriteDicomOptions().bits_stored(12));
  }
  write_text_file(root / "stage_2_train_labels.csv", csv);
}

/// CheXpert-v1.0-small layout under `root` (train.csv, valid.csv): every image is positive for
/// exactly one of the paper's first three labels (the band) and negative for the other four.
inline void write_chexpert(const std::filesystem::path& root, int64_t train = 60,
                           int64_t valid = 30) {
  const auto labels = data::chexpert_all_labels();
  const auto paper = data::chexpert_paper_labels();
  std::string header = "Path,Sex,Age,Frontal/Lateral,AP/PA";
  for (const auto& l : labels) header += "," + l;
  for (const auto& [split, n] :
       {std::pair<std::string, int64_t>{"train", train}, {"valid", valid}}) {
    std::string csv = header + "\n";
    for (int64_t i = 0; i < n; ++i) {
      const int64_t c = i % 3;
      const std::string rel = "CheXpert-v1.0-small/" + split + "/patient" + split +
                              std::to_string(i) + "/study1/view1_frontal.png";
      write_band_png(root / rel, c, i + (split == "valid" ? 1000 : 0));
      csv += rel + ",Female,50,Frontal,AP";
      for (const auto& l : labels) {
        csv += l == paper[static_cast<size_t>(c)] ? ",1.0" : ",0.0";
      }
      csv += "\n";
    }
    write_text_file(root / "CheXpert-v1.0-small" / (split + ".csv"), csv);
  }
}

}  // namespace convirt::test
