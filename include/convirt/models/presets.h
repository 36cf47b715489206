#pragma once
// Named model configurations.
//
// | preset | image encoder | text encoder | heads | tokens | image |
// |---|---|---|---|---|---|
// | paper | ResNet-50, RGB | BERT-base 12x768, max pooling, embeddings + 6 layers frozen |
// 2048->2048->512, 768->768->512 | 128 | 224 | | small | ResNet-18 width 32, 1 channel | BERT
// 2x128, 2 heads, vocab 2048, max pooling, nothing frozen | 256->256->128, 128->128->128 | 64 | 64
// |

#include <convirt/models/config.h>

#include <string>
#include <vector>

namespace convirt::models {

/// The paper's model (section 2 of docs/paper.md).
ModelConfig paper_preset();
/// A model that pretrains in minutes on 2 CPU cores at batch 32 on 64 px grey images. vocab_size
/// should be the size of the vocabulary built from the training corpus.
ModelConfig small_preset(int64_t vocab_size = 2048);
/// "paper" or "small"; anything else is a ValueError listing the names.
ModelConfig preset(const std::string& name);
std::vector<std::string> preset_names();

}  // namespace convirt::models
