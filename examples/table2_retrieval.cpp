// Table 2: zero-shot retrieval on the 8x200 format, image->image and text->image Precision@5, @10
// and @50 (chance: 12.5% with 8 categories), for Random init and ConVIRT.
//
// Without arguments it builds the synthetic setting in runs/example-retrieval (see
// table1_linear_protocol.cpp) and queries its 8-category retrieval set. On real data:
//
//   example_table2_retrieval --models runs/mimic/model.pt --vocab runs/mimic/vocab.txt
//       --retrieval-dir /data/chexpert-8x200 --image-root /data
//
// Random init has no trained text side, so it gets image->image only (as in the paper). Writes
// DIR/results.json (--out DIR).

#include "example_util.h"

#include <convirt/core/threads.h>
#include <convirt/pipeline/retrieval.h>

#include <filesystem>
#include <iostream>

int main(int argc, char** argv) {
  return convirt_example::run_example(argc, argv, [](const convirt_example::Args& args) {
    namespace fs = std::filesystem;
    const std::string work = args.str("out", "runs/example-retrieval");
    std::unique_ptr<convirt_example::SyntheticSetting> synthetic;
    std::string retrieval_dir = args.str("retrieval-dir"), image_root = args.str("image-root"),
                vocab = args.str("vocab");
    if (retrieval_dir.empty() || !args.has("models")) {
      synthetic = std::make_unique<convirt_example::SyntheticSetting>(
          convirt_example::synthetic_setting(work, args));
    }
    if (retrieval_dir.empty()) {
      retrieval_dir = synthetic->data.retrieval_dir;
      image_root = synthetic->data.chexpert_root;
      vocab = synthetic->vocab;
    }
    convirt::eval::Results results;
    for (const auto& [name, path] : convirt_example::models_to_compare(args, synthetic.get())) {
      results.merge(
          convirt::pipeline::evaluate_retrieval(convirt::pipeline::RetrievalEvalOptions(path)
                                                    .method_name(name)
                                                    .retrieval_dir(retrieval_dir)
                                                    .image_root(image_root)
                                                    .vocab(name == "Random init" ? "" : vocab)));
    }
    std::cout << convirt::eval::format_retrieval_table(results);
    fs::create_directories(work);
    const std::string out = (fs::path(work) / "results.json").string();
    results.save(out);
    std::cout << "results: " << out << "\n";
  });
}
