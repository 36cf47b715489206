#pragma once
// All-gather that keeps the autograd graph: the building block of global negatives.

#include <convirt/dist/process_group.h>

#include <torch/types.h>

namespace convirt::dist {

/// Every rank's `local` ([n_r, ...], n_r may differ between ranks) concatenated along dim 0 in rank
/// order, differentiable: the backward pass sums the gradient of the gathered tensor over all
/// ranks (an all-reduce) and hands each rank the rows of its own shard. So if every rank computes
/// a loss term on the gathered tensor, the sum of those terms backpropagates exactly into each
/// rank's local rows. With world_size 1 this is the identity.
///
/// Example:
///   auto all_text = convirt::dist::gather_with_grad(text_emb, ctx);  // [N_global, D]
///   auto logits = image_emb.mm(all_text.t());                       // local rows x all columns
torch::Tensor gather_with_grad(const torch::Tensor& local, const DistributedContext& ctx);

}  // namespace convirt::dist
