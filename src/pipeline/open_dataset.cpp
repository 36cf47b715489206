#include "open_dataset.h"

#include <convirt/core/check.h>
#include <convirt/data/datasets/chexpert.h>
#include <convirt/data/datasets/covidx.h>
#include <convirt/data/datasets/mura.h>
#include <convirt/data/datasets/rsna.h>

#include <filesystem>

namespace convirt::pipeline::detail {
namespace {

void check_path(const std::string& path, const std::string& option, const std::string& dataset) {
  CONVIRT_CHECK_VALUE(!path.empty(), option, " must be set for dataset ", dataset);
  CONVIRT_CHECK_VALUE(std::filesystem::exists(path), option, " must name an existing path, got '",
                      path, "'");
}

}  // namespace

OpenedDataset open_dataset(const DatasetFiles& f, data::ImageTransform transform, int64_t channels,
                           bool with_train) {
  const std::string kind = to_string(f.dataset);
  OpenedDataset d;
  switch (f.dataset) {
    case DatasetKind::kChexpert: {
      if (with_train) check_path(f.train_csv, "train_csv", kind);
      check_path(f.test_csv, "test_csv", kind);
      auto copts = data::ChexpertOptions()
                       .uncertain(data::parse_uncertain_policy(f.uncertain))
                       .image_root(f.image_root)
                       .transform(transform)
                       .channels(channels)
                       .skip_bad_rows(f.skip_bad_rows);
      if (!f.labels.empty()) copts.labels(f.labels);
      if (with_train) d.train = std::make_shared<data::ChexpertDataset>(f.train_csv, copts);
      d.test = std::make_shared<data::ChexpertDataset>(f.test_csv, copts);
      d.keep_mask = true;
      break;
    }
    case DatasetKind::kRsna: {
      check_path(f.data_root, "data_root", kind);
      d.test = std::make_shared<data::RsnaDataset>(
          f.data_root, data::RsnaOptions().transform(transform).channels(channels).skip_bad_rows(
                           f.skip_bad_rows));
      if (with_train) d.train = d.test;
      break;
    }
    case DatasetKind::kCovidx: {
      check_path(f.data_root, "data_root", kind);
      auto copts = data::CovidxOptions().transform(transform).channels(channels).skip_bad_rows(
          f.skip_bad_rows);
      if (with_train)
        d.train = std::make_shared<data::CovidxDataset>(f.data_root, "train.txt", copts);
      d.test = std::make_shared<data::CovidxDataset>(f.data_root, "test.txt", copts);
      d.task = eval::ClassificationTask::kMultiClass;
      break;
    }
    case DatasetKind::kMura: {
      check_path(f.data_root, "data_root", kind);
      const auto& level = f.mura_level;
      CONVIRT_CHECK_VALUE(level == "patient" || level == "study" || level == "image",
                          "mura_level must be \"patient\", \"study\" or \"image\", got \"", level,
                          "\"");
      auto mopts = data::MuraOptions().transform(transform).channels(channels).skip_bad_rows(
          f.skip_bad_rows);
      if (with_train) d.train = std::make_shared<data::MuraDataset>(f.data_root, "train", mopts);
      d.test = std::make_shared<data::MuraDataset>(f.data_root, "valid", mopts);
      if (level != "image") d.group_level = level;
      break;
    }
  }
  return d;
}

}  // namespace convirt::pipeline::detail
