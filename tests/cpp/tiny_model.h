#pragma once
// The smallest ConVIRT model the program-level tests train (CLI, fault injection, rank loss): one
// definition, so that a change of preset or option reaches every test that pretrains.

#include <convirt/models/presets.h>

#include <cstdint>

namespace convirt::test {

/// A ConVIRT model small enough to pretrain for a hundred steps in seconds at 32 px (grey ResNet-18
/// of width 4, one BERT layer of width 32, dropout on), for a vocabulary of `vocab_size` tokens.
inline models::ModelConfig tiny_model_config(int64_t vocab_size) {
  models::ModelConfig c;
  c.image_encoder("resnet18")
      .resnet(models::ResNetOptions(18).base_width(4).in_channels(1))
      .bert(models::BertOptions(models::BertConfig()
                                    .vocab_size(vocab_size)
                                    .hidden_size(32)
                                    .num_hidden_layers(1)
                                    .num_attention_heads(2)
                                    .intermediate_size(64)
                                    .max_position_embeddings(32))
                .frozen_layers(0)
                .freeze_embeddings(false))
      .projection_dim(16)
      .max_length(32)
      .image_size(32);
  return c;
}

}  // namespace convirt::test
