// Table 1(b): the fine-tuning protocol (head warm-up, then every layer; label fractions 1%, 10%,
// 100%) for Random init and ConVIRT.
//
// Without arguments it builds the synthetic setting in runs/example-finetune (see
// table1_linear_protocol.cpp) and fine-tunes on its CheXpert-style set with one seed. On real data:
//
//   example_table1_finetune_protocol --models runs/mimic/model.pt --dataset mura
//       --data-root /data/MURA-v1.1 --seeds 5
//
// Datasets too large for memory are streamed from disk batch by batch (--data-mode auto|memory|
// stream). Other options: --out DIR, --fractions, --seeds, --max-epochs, --max-steps (per run,
// warm-up included; synthetic default 150, real data: none), --warmup-steps (synthetic default 50,
// real data: the paper's 200), --lr, and the synthetic setting's --studies, --labelled,
// --pretrain-steps. Writes DIR/results.json.

#include "example_util.h"

#include <convirt/core/threads.h>

#include <iostream>

int main(int argc, char** argv) {
  return convirt_example::run_example(argc, argv, [](const convirt_example::Args& args) {
    convirt_example::table1(convirt::pipeline::Protocol::kFinetune, args);
  });
}
