// A user-defined image encoder, trained and evaluated by the library without touching it: a small
// CNN of this file's own, registered by name with options that live in the model config's JSON
// (image_encoder_options), pretrained with ConVIRT's InfoNCE loss and augmentation by
// train::Pretrainer on the synthetic paired dataset, saved, reloaded through the registry, and
// evaluated with the linear-probe protocol (frozen encoder, linear head) next to its untrained
// self.
//
//   example_custom_image_encoder [--out DIR] [--studies N] [--labelled N] [--steps N]
//       [--width N] [--batch-size N] [--max-epochs N] [--seed N]
//
// Defaults: runs/example-custom-encoder, 600 studies, 400 labelled images, 200 steps, width 16.
// Writes DIR/untrained.safetensors, DIR/model.safetensors and DIR/results.json. Any program that
// registers "tiny_cnn" the same way (here: before the first model is built or loaded) can load
// DIR/model.safetensors; a program that has not gets a ValueError naming the registered encoders.

#include "example_util.h"

#include <convirt/eval/tables.h>
#include <convirt/io/checkpoint.h>
#include <convirt/models/config.h>
#include <convirt/models/encoder.h>
#include <convirt/models/presets.h>
#include <convirt/models/registry.h>
#include <convirt/pipeline/evaluate.h>
#include <convirt/pipeline/experiment.h>
#include <convirt/train/pretrainer.h>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>

namespace {

/// The encoder's architecture, as it is written in the model config's "image_encoder_options".
struct TinyCnnOptions {
  /// Channels of the input images; the library reads images with this many (image_channels()).
  TORCH_ARG(int64_t, in_channels) = 1;
  /// Channels of the first block; each further block doubles them.
  TORCH_ARG(int64_t, width) = 16;
  /// Blocks of conv 3x3 stride 2, BatchNorm, ReLU.
  TORCH_ARG(int64_t, blocks) = 3;

 public:
  std::string to_json() const {
    return nlohmann::json{{"in_channels", in_channels()}, {"width", width()}, {"blocks", blocks()}}
        .dump();
  }
  /// Absent keys keep their defaults; anything else is an error naming the key.
  static TinyCnnOptions from_json(const std::string& text) {
    TinyCnnOptions o;
    const auto json = nlohmann::json::parse(text);
    CONVIRT_CHECK_VALUE(json.is_object(), "tiny_cnn options must be a JSON object, got ", text);
    for (const auto& [key, value] : json.items()) {
      CONVIRT_CHECK_VALUE(value.is_number_integer() && value.get<int64_t>() >= 1,
                          "tiny_cnn option '", key, "' must be an integer >= 1, got ",
                          value.dump());
      if (key == "in_channels") {
        o.in_channels(value.get<int64_t>());
      } else if (key == "width") {
        o.width(value.get<int64_t>());
      } else if (key == "blocks") {
        o.blocks(value.get<int64_t>());
      } else {
        CONVIRT_CHECK_VALUE(false, "unknown tiny_cnn option '", key,
                            "'; known: in_channels, width, blocks");
      }
    }
    return o;
  }
};

/// What ConVIRT asks of an image encoder (convirt/models/encoder.h): a module whose forward maps
/// images [B, C, H, W] to features [B, D] and whose output_dim() is D.
class TinyCnnImpl : public torch::nn::Module {
 public:
  explicit TinyCnnImpl(const TinyCnnOptions& options) {
    int64_t in = options.in_channels();
    int64_t out = options.width();
    for (int64_t i = 0; i < options.blocks(); ++i, in = out, out *= 2) {
      body_->push_back(
          torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).stride(2).padding(1).bias(false)));
      body_->push_back(torch::nn::BatchNorm2d(out));
      body_->push_back(torch::nn::ReLU());
    }
    output_dim_ = in;
    register_module("body", body_);
  }
  torch::Tensor forward(torch::Tensor images) {
    return torch::adaptive_avg_pool2d(body_->forward(images), {1, 1}).flatten(1);
  }
  int64_t output_dim() const { return output_dim_; }

 private:
  torch::nn::Sequential body_;
  int64_t output_dim_ = 0;
};
TORCH_MODULE(TinyCnn);
static_assert(convirt::models::is_image_encoder_v<TinyCnn>,
              "TinyCnn must meet the ImageEncoder requirements");

/// The encoder under a name the config can use; its factory reads the options from the config.
void register_tiny_cnn() {
  convirt::models::register_image_encoder("tiny_cnn", [](const convirt::models::ModelConfig& c) {
    return convirt::models::AnyImageEncoder(
        TinyCnn(TinyCnnOptions::from_json(c.image_encoder_options())));
  });
}

void run(const convirt_example::Args& args) {
  namespace fs = std::filesystem;
  namespace models = convirt::models;
  namespace pipeline = convirt::pipeline;
  const fs::path work = args.str("out", "runs/example-custom-encoder");
  const int64_t studies = args.integer("studies", 600);
  const int64_t labelled = args.integer("labelled", 400);
  const int64_t steps = args.integer("steps", 200);
  const uint64_t seed = static_cast<uint64_t>(args.integer("seed", 0));
  register_tiny_cnn();

  // The synthetic setting: paired studies to pretrain on, a labelled set to probe with.
  auto data = pipeline::ensure_synthetic((work / "data").string(),
                                         convirt::data::synthetic::SyntheticOptions()
                                             .train_studies(studies)
                                             .validate_studies(std::max<int64_t>(studies / 10, 40))
                                             .test_studies(8)
                                             .chexpert_train(labelled)
                                             .chexpert_valid(std::max<int64_t>(labelled / 3, 30))
                                             .image_size(64)
                                             .seed(seed));

  // The small preset with tiny_cnn in place of its ResNet: the encoder's options are data in the
  // config, so they travel in every checkpoint and load_convirt() rebuilds the same encoder.
  const auto cnn = TinyCnnOptions().in_channels(1).width(args.integer("width", 16));
  auto config =
      models::small_preset().image_encoder("tiny_cnn").image_encoder_options(cnn.to_json());
  // The pipelines read images with the channels the config's encoder takes.
  const int64_t channels = config.image_channels();
  auto train = pipeline::load_pairs(data.mimic_root, "train",
                                    pipeline::pretrain_transform(config.image_size()), channels);
  auto val = pipeline::load_pairs(data.mimic_root, "validate",
                                  pipeline::eval_transform(config.image_size()), channels);
  auto tokenizer = pipeline::build_tokenizer(*train, 1024, (work / "vocab.txt").string());
  config.bert().config().vocab_size(tokenizer->vocab_size());

  torch::manual_seed(seed);
  auto model = models::make_convirt(config);
  std::cout << "image encoder: tiny_cnn " << config.image_encoder_options() << ", "
            << model->image_encoder->output_dim() << " features\n";
  const std::string untrained = (work / "untrained.safetensors").string();
  fs::create_directories(work);
  convirt::io::save_convirt(*model, untrained);

  // Pretraining: the Pretrainer augments each image (pretrain_transform), scores the batch with
  // the bidirectional InfoNCE loss (tau 0.1, lambda 0.75, the paper's) and validates at the end.
  convirt::train::PretrainOptions opts((work / "pretrain").string());
  opts.learning_rate(5e-4)
      .batch_size(args.integer("batch-size", 32))
      .temperature(0.1)
      .image_to_text_weight(0.75)
      .max_steps(steps)
      .eval_every(steps)
      .max_evals(0)
      .max_length(config.max_length())
      .log_every(std::max<int64_t>(steps / 5, 1))
      .resume(false)
      .seed(seed);
  convirt::train::Pretrainer trainer(model, tokenizer, train, val, opts);
  const double before = trainer.validation_loss();
  const auto result = trainer.run();
  std::printf("validation InfoNCE loss: %.4f before, %.4f after %lld steps\n", before,
              result.best_val_loss, static_cast<long long>(result.steps));
  CONVIRT_CHECK_VALUE(result.best_val_loss < before,
                      "pretraining did not lower the validation loss: ", before, " before, ",
                      result.best_val_loss, " after");

  // Save, and load back: load_convirt() finds "tiny_cnn" in the registry and rebuilds it from the
  // options the checkpoint's config carries.
  const std::string trained = (work / "model.safetensors").string();
  convirt::io::save_convirt(*trainer.model(), trained);
  auto loaded = convirt::io::load_convirt(trained);
  trainer.model()->eval();
  loaded->eval();
  torch::NoGradGuard no_grad;
  const auto images =
      torch::stack({val->get(0, seed).image, val->get(1, seed).image, val->get(2, seed).image});
  const auto a = trainer.model()->encode_image(images);
  const auto b = loaded->encode_image(images);
  CONVIRT_CHECK_VALUE(torch::equal(a, b), "the reloaded model's image embeddings differ by up to ",
                      (a - b).abs().max().item<double>());
  std::cout << "reload: identical image embeddings from " << trained << "\n";

  // The linear protocol on the labelled set: the frozen encoder's features, a linear head.
  const auto probe =
      pipeline::EvaluateOptions()
          .protocol(pipeline::Protocol::kLinear)
          .train_csv(data.chexpert_train_csv)
          .test_csv(data.chexpert_valid_csv)
          // The synthetic labelled set has no consolidation; pneumonia, its nearest finding,
          // stands in.
          .labels({"Atelectasis", "Cardiomegaly", "Edema", "Pleural Effusion", "Pneumonia"})
          .fractions({1.0})
          .seeds(1)
          .max_epochs(args.integer("max-epochs", 20))
          .learning_rate(1e-3);
  convirt::eval::Results results;
  results.merge(pipeline::evaluate(
      pipeline::EvaluateOptions(probe).model_path(untrained).method_name("Random init")));
  results.merge(pipeline::evaluate(
      pipeline::EvaluateOptions(probe).model_path(trained).method_name("ConVIRT")));
  std::cout << convirt::eval::format_classification_table(results, "linear");
  // The synthetic CheXpert-style task is scored by the mean AUC over its findings (percent).
  for (const auto& method : results.methods("linear"))
    for (const auto& task : results.tasks("linear"))
      for (const auto& fraction : results.fractions("linear", task))
        if (const auto auc = results.classification("linear", method, task, fraction))
          std::printf("%s, %s, %s%% of the labels: AUC %.2f\n", method.c_str(), task.c_str(),
                      fraction.c_str(), auc->mean);
  const std::string out = (work / "results.json").string();
  results.save(out);
  std::cout << "results: " << out << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  return convirt_example::run_example(argc, argv, run);
}
