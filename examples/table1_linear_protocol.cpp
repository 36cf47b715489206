// Table 1(a) for one model: the linear protocol (frozen encoder, linear head, label fractions 1%,
// 10%, 100%, 5 seeds) on a CheXpert-format labelled set. Without arguments it uses the synthetic
// set and a randomly initialised small model; give a convirt checkpoint (from `convirt pretrain`)
// and, for real data, CheXpert's train.csv and valid.csv.
//
//   example_table1_linear_protocol [model.pt] [train.csv valid.csv]

#include <convirt/convirt.h>
#include <convirt/data/datasets/chexpert.h>
#include <convirt/data/subsets.h>
#include <convirt/eval/linear_probe.h>
#include <convirt/eval/tables.h>
#include <convirt/io/checkpoint.h>
#include <convirt/models/presets.h>
#include <convirt/pipeline/experiment.h>

#include <torch/torch.h>

#include <iostream>
#include <string>

int main(int argc, char** argv) {
  convirt::set_num_threads(0);
  std::string train_csv, test_csv;
  convirt::models::ConVIRTModel model{nullptr};
  if (argc > 1) {
    model = convirt::io::load_convirt(argv[1]);
  } else {
    torch::manual_seed(0);
    model = convirt::models::make_convirt(convirt::models::small_preset());
  }
  std::vector<std::string> labels = {"Atelectasis", "Cardiomegaly", "Edema", "Pleural Effusion",
                                     "Pneumonia"};
  if (argc > 3) {
    train_csv = argv[2];
    test_csv = argv[3];
    labels = convirt::data::chexpert_paper_labels();
  } else {
    auto synth = convirt::pipeline::ensure_synthetic(
        "runs/example-data", convirt::data::synthetic::SyntheticOptions().train_studies(400));
    train_csv = synth.chexpert_train_csv;
    test_csv = synth.chexpert_valid_csv;
  }
  const int64_t size = model->config().image_size() == 224 ? 224 : 64;
  auto options = convirt::data::ChexpertOptions()
                     .labels(labels)
                     .transform(convirt::pipeline::eval_transform(size))
                     .channels(model->config().resnet().in_channels());
  auto all = convirt::pipeline::load_labeled(convirt::data::ChexpertDataset(train_csv, options));
  auto test = convirt::pipeline::load_labeled(convirt::data::ChexpertDataset(test_csv, options));
  auto [train_rows, val_rows] = convirt::data::stratified_split(all.targets, 0.85, 0);
  auto train = all.select(torch::tensor(train_rows, torch::kLong));
  auto val = all.select(torch::tensor(val_rows, torch::kLong));

  // Frozen encoder: features once, then a linear head per (fraction, seed).
  auto encoder = convirt::pipeline::image_encoder(model);
  encoder.set_training(false);
  train.inputs = convirt::eval::extract_features(encoder, train.inputs);
  val.inputs = convirt::eval::extract_features(encoder, val.inputs);
  test.inputs = convirt::eval::extract_features(encoder, test.inputs);
  auto cells = convirt::eval::label_fraction_sweep(
      train, {0.01, 0.1, 1.0}, {0, 1, 2, 3, 4},
      [&](const convirt::eval::LabeledSet& subset, uint64_t seed) {
        return convirt::eval::train_linear_probe(
                   subset, val, test,
                   convirt::eval::ClassifierOptions().learning_rate(1e-3).seed(seed))
            .test_metric;
      });
  convirt::eval::Results results;
  convirt::eval::add_sweep(results, "linear", argc > 1 ? "ConVIRT" : "Random init", "CheXpert",
                           cells);
  std::cout << convirt::eval::format_classification_table(results, "linear");
  return 0;
}
