#include <convirt/pipeline/tsne_figure.h>

#include <convirt/core/check.h>
#include <convirt/data/datasets/retrieval.h>
#include <convirt/eval/plot.h>
#include <convirt/eval/tsne.h>
#include <convirt/io/checkpoint.h>
#include <convirt/pipeline/evaluate.h>
#include <convirt/pipeline/experiment.h>

#include <torch/torch.h>

#include <algorithm>
#include <filesystem>

namespace convirt::pipeline {
namespace fs = std::filesystem;

std::string tsne_figure(const TsneFigureOptions& o) {
  CONVIRT_CHECK_VALUE(!o.model_paths().empty(), "model_paths must name at least one checkpoint");
  CONVIRT_CHECK_VALUE(o.names().empty() || o.names().size() == o.model_paths().size(),
                      "names must be empty or one per model (", o.model_paths().size(), "), got ",
                      o.names().size());
  CONVIRT_CHECK_VALUE(fs::is_directory(o.retrieval_dir()),
                      "retrieval_dir must name the folder of the 8x200 CSVs, got '",
                      o.retrieval_dir(), "'");
  CONVIRT_CHECK_VALUE(o.categories() > 0, "categories must be > 0, got ", o.categories());
  std::vector<eval::ScatterPanel> panels;
  std::vector<std::string> category_names;
  for (size_t i = 0; i < o.model_paths().size(); ++i) {
    const auto& path = o.model_paths()[i];
    CONVIRT_CHECK_VALUE(fs::exists(path), "model_paths[", i, "] must name an existing file, got '",
                        path, "'");
    auto model = io::load_convirt(path);
    model->eval();
    const int64_t size = o.image_size() > 0 ? o.image_size() : model->config().image_size();
    data::RetrievalSet set(o.retrieval_dir(), data::RetrievalOptions()
                                                  .image_root(o.image_root())
                                                  .transform(eval_transform(size))
                                                  .channels(model->config().image_channels()));
    auto candidates = load_labeled(*set.candidates(), o.workers());
    auto cats = candidates.targets.argmax(1);
    auto shown = cats.lt(o.categories());
    CONVIRT_CHECK_VALUE(shown.sum().item<int64_t>() > 1, "the first ", o.categories(),
                        " categories hold fewer than 2 candidates");
    torch::Tensor emb;
    {
      torch::NoGradGuard no_grad;
      emb = model->encode_image(candidates.inputs.index({shown}));
    }
    // t-SNE needs more than 3 x perplexity points: a small set gets a smaller perplexity.
    const double perplexity = std::min(o.perplexity(), static_cast<double>(emb.size(0) - 1) / 3.0);
    auto t = eval::tsne(emb, eval::TSNEOptions().perplexity(perplexity).seed(o.seed()));
    panels.push_back({o.names().empty() ? method_name_for(path) : o.names()[i], t.embedding,
                      cats.index({shown})});
    if (category_names.empty()) {
      const auto& all = set.categories();
      category_names.assign(
          all.begin(),
          all.begin() + std::min<int64_t>(o.categories(), static_cast<int64_t>(all.size())));
    }
  }
  if (fs::path(o.out()).has_parent_path()) fs::create_directories(fs::path(o.out()).parent_path());
  eval::write_scatter_svg(
      o.out(), panels, eval::ScatterPlotOptions().title(o.title()).category_names(category_names));
  return o.out();
}

}  // namespace convirt::pipeline
