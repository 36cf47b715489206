#pragma once
// The small synthetic paired set and float64 model that the multi-rank trainer tests share: every
// rank reads the same files, and "W ranks equal one process" is checked in float64 so that only
// summation order separates the two.

#include <convirt/data/synthetic/generator.h>
#include <convirt/models/convirt.h>
#include <convirt/pipeline/experiment.h>

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <memory>

namespace convirt::test {

/// 48 training and 13 validation pairs of `image_size` px grey images, written under dir/data by
/// the first caller (a later one reads them), with a WordPiece vocabulary of at most `vocab_size`
/// tokens built from the training reports (dir/vocab.txt).
struct SmallPairs {
  std::shared_ptr<data::PairedDataset> train, val;
  std::shared_ptr<text::WordPieceTokenizer> tokenizer;

  SmallPairs(const std::filesystem::path& dir, int64_t image_size, int64_t vocab_size)
      : image_size_(image_size) {
    auto synth =
        pipeline::ensure_synthetic((dir / "data").string(), data::synthetic::SyntheticOptions()
                                                                .train_studies(48)
                                                                .validate_studies(13)
                                                                .test_studies(2)
                                                                .chexpert_train(4)
                                                                .chexpert_valid(4)
                                                                .retrieval_candidates(2)
                                                                .retrieval_image_queries(1)
                                                                .retrieval_text_queries(1)
                                                                .image_size(image_size)
                                                                .threads(2)
                                                                .seed(3));
    train = pipeline::load_pairs(synth.mimic_root, "train",
                                 pipeline::pretrain_transform(image_size), 1);
    val =
        pipeline::load_pairs(synth.mimic_root, "validate", pipeline::eval_transform(image_size), 1);
    tokenizer = pipeline::build_tokenizer(*train, vocab_size, (dir / "vocab.txt").string());
  }

  /// A float64 ConVIRT model with the image encoder `image_side` names (image_encoder and resnet
  /// options), a one-layer BERT of width 16 without dropout, 8-wide heads, 24 tokens; initialised
  /// from `seed`.
  models::ConVIRTModel float64_model(models::ModelConfig image_side, uint64_t seed) const {
    image_side
        .bert(models::BertOptions(models::BertConfig()
                                      .vocab_size(tokenizer->vocab_size())
                                      .hidden_size(16)
                                      .num_hidden_layers(1)
                                      .num_attention_heads(2)
                                      .intermediate_size(32)
                                      .max_position_embeddings(32)
                                      .hidden_dropout_prob(0)
                                      .attention_probs_dropout_prob(0))
                  .frozen_layers(0)
                  .freeze_embeddings(false))
        .projection_dim(8)
        .max_length(24)
        .image_size(image_size_);
    torch::manual_seed(seed);
    auto m = models::make_convirt(image_side);
    m->to(torch::kDouble);
    return m;
  }

 private:
  int64_t image_size_;
};

}  // namespace convirt::test
