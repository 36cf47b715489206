// The dataset CSV front ends, on arbitrary table contents: MIMIC-CXR metadata + split tables,
// CheXpert, RSNA, COVIDx, MURA and the CheXpert 8x200 retrieval set. The first byte picks the
// reader; the rest is the file (for readers that take two files, the two halves are separated by a
// line "=====").
//
// No image exists in the scratch folder, so every row that parses ends up as a skipped sample: the
// point is the table parsing and the row validation, which must report bad rows, never fault.
#include <convirt/data/datasets/chexpert.h>
#include <convirt/data/datasets/covidx.h>
#include <convirt/data/datasets/csv_pairs.h>
#include <convirt/data/datasets/mimic_cxr.h>
#include <convirt/data/datasets/mura.h>
#include <convirt/data/datasets/retrieval.h>
#include <convirt/data/datasets/rsna.h>

#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace convirt::data;
  namespace fz = convirt::fuzz;
  if (size < 1) return 0;
  const uint8_t which = data[0] % 7;
  const auto parts = fz::split_once(data + 1, size - 1, "\n=====\n");
  const std::string& first = parts.first;
  const std::string& second = parts.second;
  const auto dir = fz::scratch_dir() / ("ds" + std::to_string(which));
  const std::string root = dir.string();
  const std::string sub = "ds" + std::to_string(which) + "/";
  fz::expect_clean([&] {
    switch (which) {
      case 0:
        fz::write_file(sub + "mimic-cxr-2.0.0-metadata.csv", first);
        fz::write_file(sub + "mimic-cxr-2.0.0-split.csv", second);
        MimicCxrDataset(
            root,
            MimicCxrOptions().split("train").frontal_only(second.size() & 1).max_bad_fraction(-1));
        break;
      case 1:
        ChexpertDataset(fz::write_file(sub + "train.csv", first),
                        ChexpertOptions().max_bad_fraction(-1));
        break;
      case 2:
        fz::write_file(sub + "stage_2_train_labels.csv", first);
        RsnaDataset(root, RsnaOptions().max_bad_fraction(-1));
        break;
      case 3:
        fz::write_file(sub + "train.txt", first);
        CovidxDataset(root, "train.txt", CovidxOptions().max_bad_fraction(-1));
        break;
      case 4:
        fz::write_file(sub + "train_image_paths.csv", first);
        fz::write_file(sub + "train_labeled_studies.csv", second);
        MuraDataset(root, "train", MuraOptions().max_bad_fraction(-1));
        break;
      case 5:
        fz::write_file(sub + "image-retrieval/candidate.csv", first);
        fz::write_file(sub + "text-retrieval/query.csv", second);
        RetrievalSet(root, RetrievalOptions().max_bad_fraction(-1));
        break;
      default:
        CsvPairsDataset(fz::write_file(sub + "pairs.csv", first),
                        CsvPairsOptions().max_bad_fraction(-1));
        break;
    }
  });
  return 0;
}
