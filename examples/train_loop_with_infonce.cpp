// Compile-time composition: a ConVIRT<ResNet, Bert> model trained with the fused InfoNCE loss in a
// plain LibTorch loop, on the synthetic paired dataset. Copy this to put convirt's pieces into your
// own training code.
//
//   example_train_loop_with_infonce [data_dir=runs/example-data] [steps=50]

#include <convirt/convirt.h>
#include <convirt/data/loader.h>
#include <convirt/models/bert.h>
#include <convirt/models/convirt.h>
#include <convirt/models/resnet.h>
#include <convirt/pipeline/experiment.h>

#include <torch/torch.h>

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  const std::string data_dir = argc > 1 ? argv[1] : "runs/example-data";
  const int steps = argc > 2 ? std::stoi(argv[2]) : 50;
  convirt::set_num_threads(0);

  // A small synthetic paired set (written once, reused afterwards).
  auto synth = convirt::pipeline::ensure_synthetic(
      data_dir, convirt::data::synthetic::SyntheticOptions().train_studies(400).image_size(64));
  auto pairs = convirt::pipeline::load_pairs(synth.mimic_root, "train",
                                             convirt::pipeline::pretrain_transform(64), 1);
  auto tokenizer = convirt::pipeline::build_tokenizer(*pairs, 1000, data_dir + "/vocab.txt");

  // The model, composed at compile time from the two encoders.
  using Model = convirt::models::ConVIRT<convirt::models::ResNet, convirt::models::Bert>;
  convirt::models::ResNet resnet(convirt::models::ResNetOptions(18).base_width(16).in_channels(1));
  convirt::models::Bert bert(convirt::models::BertOptions(convirt::models::BertConfig()
                                                              .vocab_size(tokenizer->vocab_size())
                                                              .hidden_size(64)
                                                              .num_hidden_layers(2)
                                                              .num_attention_heads(2)
                                                              .intermediate_size(128)
                                                              .max_position_embeddings(64))
                                 .frozen_layers(0)
                                 .freeze_embeddings(false));
  Model model(resnet, bert, /*projection_dim=*/64);

  convirt::InfoNCELoss criterion(
      convirt::InfoNCEOptions().temperature(0.1).image_to_text_weight(0.75));
  torch::optim::Adam optimizer(model->parameters(),
                               torch::optim::AdamOptions(1e-4).weight_decay(1e-6));
  convirt::data::Loader loader(pairs,
                               convirt::data::LoaderOptions().batch_size(32).drop_last(true));

  for (int step = 1; step <= steps; ++step) {
    auto batch = loader.next_batch();
    auto tokens = tokenizer->encode_batch(batch.texts, 48);
    auto [v, u] = model->forward(batch.images, tokens.input_ids, tokens.attention_mask);
    auto out = criterion->forward_with_stats(v, u);
    optimizer.zero_grad();
    out.loss.backward();
    optimizer.step();
    if (step % 10 == 0) {
      std::printf("step %d  loss %.4f  image->text top-1 %.2f\n", step, out.loss.item<double>(),
                  out.image_to_text_accuracy.item<double>());
    }
  }
  return 0;
}
