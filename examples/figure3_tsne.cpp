// Figure 3: t-SNE of the image embeddings of the retrieval candidates (5 of the 8 categories), one
// panel per model: Random init, ImageNet init when torchvision weights are given, and ConVIRT.
//
// Without arguments it builds the synthetic setting in runs/example-tsne (see
// table1_linear_protocol.cpp). On real data:
//
//   example_figure3_tsne --models runs/imagenet/model.pt,runs/mimic/model.pt
//       --names "ImageNet init,ConVIRT" --retrieval-dir /data/chexpert-8x200 --image-root /data
//
// --imagenet-weights resnet.pth (a torchvision ResNet state_dict matching the model's ResNet) adds
// an ImageNet-init panel built from the first model's configuration. Writes DIR/figure3_tsne.svg.

#include "example_util.h"

#include <convirt/core/threads.h>
#include <convirt/io/torchvision.h>
#include <convirt/models/resnet.h>
#include <convirt/pipeline/tsne_figure.h>

#include <filesystem>
#include <iostream>

int main(int argc, char** argv) {
  return convirt_example::run_example(argc, argv, [](const convirt_example::Args& args) {
    namespace fs = std::filesystem;
    const std::string work = args.str("out", "runs/example-tsne");
    std::unique_ptr<convirt_example::SyntheticSetting> synthetic;
    std::string retrieval_dir = args.str("retrieval-dir"), image_root = args.str("image-root");
    if (retrieval_dir.empty() || !args.has("models")) {
      synthetic = std::make_unique<convirt_example::SyntheticSetting>(
          convirt_example::synthetic_setting(work, args));
    }
    if (retrieval_dir.empty()) {
      retrieval_dir = synthetic->data.retrieval_dir;
      image_root = synthetic->data.chexpert_root;
    }
    auto models = convirt_example::models_to_compare(args, synthetic.get());
    if (args.has("imagenet-weights")) {
      // ImageNet init: the first model's architecture with torchvision weights in its ResNet.
      auto model = convirt::io::load_convirt(models.front().second);
      auto resnet = model->image_encoder->inner_as<convirt::models::ResNetImpl>();
      CONVIRT_CHECK_VALUE(resnet != nullptr, "--imagenet-weights needs a ResNet image encoder");
      convirt::io::load_torchvision_resnet(*resnet, args.str("imagenet-weights"));
      const std::string path = (fs::path(work) / "imagenet" / "model.pt").string();
      fs::create_directories(fs::path(path).parent_path());
      convirt::io::save_convirt(*model, path);
      models.insert(models.begin() + 1, {"ImageNet init", path});
    }
    std::vector<std::string> paths, names;
    for (const auto& [name, path] : models) {
      names.push_back(name);
      paths.push_back(path);
    }
    auto out =
        convirt::pipeline::tsne_figure(convirt::pipeline::TsneFigureOptions()
                                           .model_paths(paths)
                                           .names(names)
                                           .retrieval_dir(retrieval_dir)
                                           .image_root(image_root)
                                           .out((fs::path(work) / "figure3_tsne.svg").string())
                                           .seed(static_cast<uint64_t>(args.integer("seed", 0))));
    std::cout << "figure: " << out << "\n";
  });
}
