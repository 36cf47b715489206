// Table 1(a): the linear protocol (frozen encoder, linear head; label fractions 1%, 10%, 100%; 5
// seeds, mean and standard deviation) for Random init and ConVIRT.
//
// Without arguments it builds the synthetic setting (a small synthetic dataset, an untrained model
// and a ConVIRT model pretrained for 300 steps; a few minutes on 2 cores) in runs/example-linear
// and evaluates on its CheXpert-style set. On real data, give the models and the dataset:
//
//   example_table1_linear_protocol --models runs/random/model.pt,runs/mimic/model.pt
//       --names "Random init,ConVIRT" --dataset rsna --data-root /data/rsna
//   example_table1_linear_protocol --models runs/mimic/model.pt --dataset chexpert
//       --train-csv /data/CheXpert-v1.0-small/train.csv --test-csv
//       /data/CheXpert-v1.0-small/valid.csv
//
// Other options: --out DIR, --fractions 0.01,0.1,1, --seeds N, --max-epochs N, --lr X, and for the
// synthetic setting --studies N, --labelled N, --pretrain-steps N. Writes DIR/results.json.

#include "example_util.h"

#include <convirt/core/threads.h>

#include <iostream>

int main(int argc, char** argv) {
  return convirt_example::run_example(argc, argv, [](const convirt_example::Args& args) {
    convirt_example::table1(convirt::pipeline::Protocol::kLinear, args);
  });
}
