#include <convirt/core/check.h>
#include <convirt/eval/metrics.h>
#include <convirt/eval/retrieval.h>

#include <ATen/ATen.h>

namespace convirt::eval {

const std::vector<std::string>& chexpert_8x200_categories() {
  static const std::vector<std::string> names{"Atelectasis",  "Cardiomegaly",     "Edema",
                                              "Fracture",     "Pleural Effusion", "Pneumonia",
                                              "Pneumothorax", "No Finding"};
  return names;
}

torch::Tensor cosine_similarity_matrix(const torch::Tensor& a, const torch::Tensor& b) {
  CONVIRT_CHECK_VALUE(a.defined() && a.dim() == 2, "query embeddings must be 2-D [Q, D], got ",
                      a.defined() ? detail::shape_str(a.sizes()) : std::string("undefined"));
  CONVIRT_CHECK_VALUE(b.defined() && b.dim() == 2, "candidate embeddings must be 2-D [C, D], got ",
                      b.defined() ? detail::shape_str(b.sizes()) : std::string("undefined"));
  CONVIRT_CHECK_VALUE(a.size(1) == b.size(1),
                      "query and candidate embeddings must share their width D, got ", a.size(1),
                      " and ", b.size(1));
  CONVIRT_CHECK_TYPE(at::isFloatingType(a.scalar_type()) && at::isFloatingType(b.scalar_type()),
                     "embeddings must be floating, got ", a.scalar_type(), " and ",
                     b.scalar_type());
  const auto dtype =
      (a.scalar_type() == at::kDouble || b.scalar_type() == at::kDouble) ? at::kDouble : at::kFloat;
  auto na = a.detach().to(b.device()).to(dtype);
  auto nb = b.detach().to(dtype);
  // Norms clamped like torch.nn.functional.normalize so a zero vector gives similarity 0, not NaN.
  na = na / na.norm(2, {1}, true).clamp_min(1e-12);
  nb = nb / nb.norm(2, {1}, true).clamp_min(1e-12);
  return na.mm(nb.t());
}

RetrievalResult retrieval_precision(const torch::Tensor& query_emb,
                                    const torch::Tensor& query_labels,
                                    const torch::Tensor& candidate_emb,
                                    const torch::Tensor& candidate_labels,
                                    const std::vector<int64_t>& ks) {
  auto sim = cosine_similarity_matrix(query_emb, candidate_emb).to(at::kCPU);
  RetrievalResult r;
  r.precision = precision_at_ks(sim, query_labels, candidate_labels, ks);
  r.num_queries = sim.size(0);
  r.num_candidates = sim.size(1);
  auto q = query_labels.detach().to(at::kCPU).to(at::kLong);
  auto cats = std::get<0>(at::_unique(q, /*sorted=*/true));
  for (int64_t i = 0; i < cats.size(0); ++i) {
    const int64_t c = cats[i].item<int64_t>();
    auto rows = q.eq(c).nonzero().squeeze(1);
    r.per_category[c] =
        precision_at_ks(sim.index_select(0, rows), q.index_select(0, rows), candidate_labels, ks);
  }
  return r;
}

double retrieval_chance_level(const torch::Tensor& candidate_labels, int64_t category) {
  CONVIRT_CHECK_VALUE(
      candidate_labels.defined() && candidate_labels.dim() == 1 && candidate_labels.numel() > 0,
      "candidate_labels must be a non-empty [C] tensor");
  return candidate_labels.detach()
      .to(at::kCPU)
      .to(at::kLong)
      .eq(category)
      .to(at::kDouble)
      .mean()
      .item<double>();
}

}  // namespace convirt::eval
