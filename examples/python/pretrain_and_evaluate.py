"""ConVIRT end to end from Python: synthetic data, pretraining, the linear protocol and retrieval.

Every stage is the C++ pipeline driven by a config dict (the same keys as the `convirt` command):

  1. convirt.data.generate_synthetic  - a MIMIC-CXR-JPG-layout paired set, a CheXpert-style
                                        labelled set and an 8x200-style retrieval set
  2. convirt.data readers             - a look at the data as torch Datasets
  3. convirt.train.pretrain           - ConVIRT pretraining from the MIMIC-CXR-JPG root
  4. convirt.eval.evaluate            - linear protocol (Table 1) and zero-shot retrieval (Table 2)
  5. convirt.models.load              - the pretrained model as a torch.nn.Module: encode_images /
                                        encode_texts on raw files and sentences

Run (about a minute with the defaults on 2 cores):
    PYTHONPATH=build/python /usr/bin/python3 examples/python/pretrain_and_evaluate.py --out /tmp/convirt_e2e
"""
import argparse
import os

import torch
import torch.nn.functional as F

import convirt
import convirt.data as D
import convirt.eval as ev
import convirt.models
import convirt.train


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/python_e2e")
    p.add_argument("--studies", type=int, default=200, help="synthetic training studies")
    p.add_argument("--image-size", type=int, default=48)
    p.add_argument("--steps", type=int, default=30, help="pretraining steps")
    p.add_argument("--seeds", type=int, default=2, help="linear-protocol runs per label fraction")
    args = p.parse_args()

    # 1. Data.
    data = D.generate_synthetic(os.path.join(args.out, "data"), train_studies=args.studies,
                                validate_studies=max(8, args.studies // 10), test_studies=4,
                                chexpert_train=max(60, args.studies // 2), chexpert_valid=40,
                                retrieval_candidates=10, image_size=args.image_size, seed=0)
    print(f"synthetic data: {data['studies']} studies, {data['chexpert_images']} labelled images")

    # 2. The readers are torch Datasets: here one batch through a plain DataLoader.
    pairs = D.MimicCxrDataset(data["mimic_root"], split="train",
                              transform=convirt.transforms.paper_augmentation(size=args.image_size))
    batch = next(iter(torch.utils.data.DataLoader(pairs, batch_size=4, shuffle=True)))
    print(f"a paired batch: images {tuple(batch['image'].shape)}, first sentence: {batch['text'][0]!r}")

    # 3. Pretraining from the MIMIC-CXR-JPG root; the vocabulary is built from the reports.
    result = convirt.train.pretrain(
        {"data": data["mimic_root"], "out": os.path.join(args.out, "pretrain"), "preset": "small",
         "image_size": args.image_size, "batch_size": 16, "max_steps": args.steps,
         "eval_every": max(1, args.steps // 3), "lr": 5e-4, "workers": 2, "verbose": False},
        callback=lambda m: print(f"  step {m['step']:4d}  " + (f"val loss {m['val_loss']:.3f}" if m["is_eval"]
                                                                 else f"loss {m['loss']:.3f}")))
    print(f"pretrained: {result['steps']} steps, model {result['model']}")

    # 4. Evaluation: the linear protocol on the CheXpert-style set and zero-shot retrieval.
    linear = ev.evaluate({"model": result["model"], "protocol": "linear", "dataset": "chexpert",
                          "name": "convirt", "train_csv": data["chexpert_train_csv"],
                          "test_csv": data["chexpert_valid_csv"], "fractions": [0.1, 1.0],
                          "seeds": args.seeds, "learning_rate": 1e-3, "max_epochs": 20},
                         callback=lambda r: print(f"  run {r['run']}/{r['total_runs']}: "
                                                  f"{r['fraction']:.0%} labels, AUC {r['metric']:.3f}"))
    print(linear["table"])
    retrieval = ev.evaluate({"model": result["model"], "protocol": "retrieval", "name": "convirt",
                             "retrieval_dir": data["retrieval_dir"], "image_root": data["chexpert_root"],
                             "vocab": result["vocab"], "ks": [5, 10]})
    print(retrieval["table"])

    # 5. The pretrained model is a torch.nn.Module; encode_images reads files with its evaluation
    #    preprocessing and encode_texts uses its tokenizer (the vocab.txt beside model.pt).
    model = convirt.models.load(result["model"])
    val = D.MimicCxrDataset(data["mimic_root"], split="validate")
    samples = [val[i] for i in range(min(8, len(val)))]
    v = model.encode_images([s["path"] for s in samples])
    u = model.encode_texts([s["text"] for s in samples])
    hits = ((F.normalize(v, dim=1) @ F.normalize(u, dim=1).t()).argmax(1) == torch.arange(len(samples)))
    print(f"image->sentence matches among {len(samples)} validation pairs: {hits.float().mean():.0%} "
          f"(chance {1 / len(samples):.0%})")


if __name__ == "__main__":
    main()
