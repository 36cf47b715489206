#include <convirt/pipeline/retrieval.h>

#include <convirt/core/check.h>
#include <convirt/data/datasets/retrieval.h>
#include <convirt/eval/retrieval.h>
#include <convirt/io/checkpoint.h>
#include <convirt/pipeline/evaluate.h>
#include <convirt/pipeline/experiment.h>
#include <convirt/pipeline/model_text.h>
#include <convirt/text/wordpiece.h>

#include <torch/torch.h>

#include <algorithm>
#include <filesystem>

namespace convirt::pipeline {
namespace fs = std::filesystem;

eval::Results evaluate_retrieval(const RetrievalEvalOptions& o) {
  CONVIRT_CHECK_VALUE(fs::exists(o.model_path()), "model_path must name an existing file, got '",
                      o.model_path(), "'");
  CONVIRT_CHECK_VALUE(fs::is_directory(o.retrieval_dir()),
                      "retrieval_dir must name the folder of the 8x200 CSVs, got '",
                      o.retrieval_dir(), "'");
  CONVIRT_CHECK_VALUE(!o.ks().empty(), "ks must name at least one k");
  auto model = io::load_convirt(o.model_path());
  model->eval();
  // Text queries need the model's own vocabulary (embedded, or the one given); a vocabulary that
  // is not the model's is refused here, before any image is read.
  std::shared_ptr<const text::WordPieceTokenizer> tokenizer;
  if (!o.vocab().empty() || !model->vocabulary().empty())
    tokenizer = model_tokenizer(*model, o.vocab(), o.model_path());
  const int64_t size = o.image_size() > 0 ? o.image_size() : model->config().image_size();
  data::RetrievalSet set(o.retrieval_dir(), data::RetrievalOptions()
                                                .image_root(o.image_root())
                                                .transform(eval_transform(size))
                                                .channels(model->config().image_channels()));
  const std::string name =
      o.method_name().empty() ? method_name_for(o.model_path()) : o.method_name();
  eval::Results results;

  // Checked before any image is read: a P@k over fewer than k candidates is undefined.
  const int64_t largest_k = *std::max_element(o.ks().begin(), o.ks().end());
  const auto n_candidates = static_cast<int64_t>(set.candidates()->size());
  CONVIRT_CHECK_VALUE(largest_k <= n_candidates, "ks: P@", largest_k, " needs at least ", largest_k,
                      " retrieval candidates, but '", o.retrieval_dir(), "' has ", n_candidates,
                      " (a generated set has retrieval_candidates per category times its 8 "
                      "categories)");
  auto candidates = load_labeled(*set.candidates(), o.workers());
  auto queries = load_labeled(*set.image_queries(), o.workers());
  auto cand_emb = image_embeddings(model, candidates.inputs);
  auto ii =
      eval::retrieval_precision(image_embeddings(model, queries.inputs), queries.targets.argmax(1),
                                cand_emb, candidates.targets.argmax(1), o.ks());
  eval::add_retrieval(results, name, "image_image", ii);

  if (tokenizer && !set.text_queries().empty()) {
    std::vector<std::string> texts;
    std::vector<int64_t> cats;
    for (const auto& q : set.text_queries()) {
      texts.push_back(q.text);
      cats.push_back(q.category);
    }
    // The text queries have their own candidate list in the official files (the same images when
    // the file is absent).
    auto text_cands = set.text_candidates() == set.candidates()
                          ? candidates
                          : load_labeled(*set.text_candidates(), o.workers());
    auto text_cand_emb = set.text_candidates() == set.candidates()
                             ? cand_emb
                             : image_embeddings(model, text_cands.inputs);
    torch::NoGradGuard no_grad;
    auto enc = tokenizer->encode_batch(texts, model->config().max_length());
    auto text_emb = model->encode_text(enc.input_ids, enc.attention_mask);
    auto ti = eval::retrieval_precision(text_emb, torch::tensor(cats, torch::kLong), text_cand_emb,
                                        text_cands.targets.argmax(1), o.ks());
    eval::add_retrieval(results, name, "text_image", ti);
  }
  return results;
}

}  // namespace convirt::pipeline
