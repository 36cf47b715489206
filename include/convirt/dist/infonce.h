#pragma once
// The ConVIRT loss with the negatives of the whole global batch, across processes.
//
// Each rank holds n_r pairs of the global batch of N = sum_r n_r (rank order = global order).
// It all-gathers both embeddings (with gradient), scores its own rows against all N columns in
// both directions, and adds its share of
//   L = (1/N) sum_i [ lambda * l_i(v->u) + (1 - lambda) * l_i(u->v) ]
// The returned value is the full L on every rank (one extra all-reduce of five scalars); its
// gradient with respect to this rank's embeddings is exactly the rows of dL/dv and dL/du that a
// single process holding the whole batch would compute, so summing parameter gradients over ranks
// (GradientSynchronizer's default) gives the one-process gradient.

#include <convirt/dist/process_group.h>
#include <convirt/loss/infonce.h>

#include <torch/types.h>

#include <memory>

namespace convirt::dist {

/// The global-batch loss L (0-dim, identical on every rank) for this rank's image embeddings
/// [n, D] and text embeddings [n, D]. Uses temperature, learnable_temperature,
/// image_to_text_weight, normalize and eps from `options`; `backend` is not used (the local
/// [n, N] logits are computed with ATen ops, the fused kernels being for square batches). n may
/// differ between ranks and may be 0 on some, as long as N >= 1. fp16/bf16 accumulate in fp32.
///
/// Example:
///   auto ctx = convirt::dist::DistributedContext::from_environment();
///   auto loss = convirt::dist::infonce_loss_distributed(v, u, convirt::InfoNCEOptions(), ctx);
///   loss.backward();  // then sum parameter gradients over ranks
torch::Tensor infonce_loss_distributed(const torch::Tensor& image_emb,
                                       const torch::Tensor& text_emb, const InfoNCEOptions& options,
                                       const DistributedContext& ctx);

/// As infonce_loss_distributed, plus the directional losses and top-1 accuracies of the global
/// batch (every rank gets the global values; ties count as correct, as in the one-process loss).
InfoNCEOutput infonce_loss_distributed_with_stats(const torch::Tensor& image_emb,
                                                  const torch::Tensor& text_emb,
                                                  const InfoNCEOptions& options,
                                                  const DistributedContext& ctx);

/// The batch split over `ctx`'s ranks, for convirt::InfoNCELoss: with it the one loss module
/// takes its negatives from every rank (infonce_loss_distributed), learns a temperature as it
/// does on one process, and with a single rank runs the one-process loss.
///
/// Example:
///   convirt::InfoNCELoss criterion(convirt::InfoNCEOptions(), convirt::dist::global_batch(ctx));
///   auto loss = criterion(v_local, u_local);  // synchronise log_temperature's gradient too
std::shared_ptr<const GlobalBatch> global_batch(DistributedContext ctx);

}  // namespace convirt::dist
