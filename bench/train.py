"""Training throughput: our LoRA trainer vs the HF ``Trainer`` with the reference study's settings.

Same model (LoRA rank 8 on every linear projection of the blocks, fp32 unless ``--dtypes`` adds
more for ours), same SST-2 rows, one epoch each, side by side in one process, interleaved over
``--repeats``:

* ``ours``      — ``w2sprobe.train.Trainer``: batches of 32, length-bucketed, padded per micro-batch
  (``--minibatch`` values, e.g. 32 = the demo default and 8 = the blog preset's);
* ``hf-trainer`` — ``transformers.Trainer`` as the reference study runs it: batch 1 x 32 gradient
  accumulation, no length grouping, ``AutoModelForSequenceClassification`` + peft LoRA, AdamW
  beta2 0.95, cosine schedule, warmup 40, weight decay 0.1, no evaluation.

Throughput = real (non-pad) training tokens per second of wall time inside the training call
(model load excluded from both); the best repeat counts.

    python bench/train.py --data-dir ../shared/data --model mpnet --rows 512
    python bench/train.py --minibatch 32 --dtypes float32 bfloat16    # a bf16 backbone (AMX CPUs)
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np
import torch

from w2sprobe.data import SplitSizes, load_splits
from w2sprobe.models import (
    describe,
    load_model,
    load_tokenizer,
    resolve_dtype,
    resolve_model,
    set_cpu_threads,
)
from w2sprobe.train import Examples, TrainConfig, Trainer, build_classifier, lora_target_modules

LR, MAX_LENGTH = 5e-4, 512


def ours(ref, tokenizer, train: Examples, minibatch: int, dtype: torch.dtype) -> dict:
    config = TrainConfig(lr=LR, epochs=1, batch_size=32, minibatch=minibatch, max_length=MAX_LENGTH)
    model = build_classifier(
        ref, device=torch.device("cpu"), dtype=dtype, pooling=None, lora=config.lora, seed=0
    )
    empty = Examples(np.array([], dtype=str), [], np.array([], dtype=np.float32))  # no evaluation
    result = Trainer(model, tokenizer, config, torch.device("cpu")).fit(train, empty)
    return {"seconds": result.seconds, "tokens": result.tokens}


def hf_trainer(ref, tokenizer, train: Examples) -> dict:
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForSequenceClassification, TrainingArguments
    from transformers import Trainer as HFTrainer

    torch.manual_seed(0)
    backbone = load_model(ref, device=torch.device("cpu"), dtype=torch.float32)
    targets = lora_target_modules(
        backbone, describe(backbone).blocks_path
    )  # the same modules as ours
    del backbone
    model = AutoModelForSequenceClassification.from_pretrained(ref.location, num_labels=2)
    prefix = model.base_model_prefix + "."
    model = get_peft_model(
        model,
        LoraConfig(
            r=8,
            lora_alpha=16,
            lora_dropout=0.0,
            modules_to_save=["classifier"],
            target_modules=[prefix + t for t in targets],
        ),
    )
    enc = tokenizer(train.texts, truncation=True, max_length=MAX_LENGTH)
    data = Dataset.from_dict(
        {
            "input_ids": enc["input_ids"],
            "attention_mask": enc["attention_mask"],
            "labels": [[1 - y, y] for y in train.targets.tolist()],
        }
    )
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out,
            per_device_train_batch_size=1,
            gradient_accumulation_steps=32,
            num_train_epochs=1,
            learning_rate=LR,
            adam_beta2=0.95,
            lr_scheduler_type="cosine",
            warmup_steps=40,
            weight_decay=0.1,
            logging_strategy="no",
            save_strategy="no",
            eval_strategy="no",
            report_to=[],
            use_cpu=True,
            dataloader_num_workers=0,
            train_sampling_strategy="random",
            disable_tqdm=True,  # no length grouping
        )
        trainer = HFTrainer(model=model, args=args, train_dataset=data)
        started = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "tokens": int(sum(len(x) for x in enc["input_ids"]))}


def main() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # the head-initialisation report is expected here
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--model", default="mpnet")
    parser.add_argument("--rows", type=int, default=512, help="strong_train rows to train on")
    parser.add_argument("--minibatch", type=int, nargs="+", default=[32, 8])
    parser.add_argument(
        "--dtypes",
        nargs="+",
        default=["float32"],
        help="backbone dtypes for ours (bfloat16: frozen bf16 weights, fp32 LoRA and head; fast "
        "on CPUs with AMX)",
    )
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    set_cpu_threads()
    splits = load_splits("sst2", data_dir=args.data_dir, sizes=SplitSizes(2 * args.rows, 10, 10))
    split = splits.splits["strong_train"]
    train = Examples(np.array(split.ids), split.texts, split.labels)
    ref = resolve_model(args.model)
    tokenizer = load_tokenizer(ref)
    runs: dict[str, list[dict]] = {}
    for _ in range(args.repeats):
        for minibatch in args.minibatch:
            for dtype in args.dtypes:
                name = f"ours (minibatch {minibatch})" + ("" if dtype == "float32" else f" {dtype}")
                torch_dtype = resolve_dtype(dtype, torch.device("cpu"))
                result = ours(ref, tokenizer, train, minibatch, torch_dtype)
                runs.setdefault(name, []).append(result)
        runs.setdefault("hf-trainer (1 x 32 accumulation)", []).append(
            hf_trainer(ref, tokenizer, train)
        )
    best = {name: max(r["tokens"] / r["seconds"] for r in rs) for name, rs in runs.items()}
    baseline = best["hf-trainer (1 x 32 accumulation)"]
    report = {
        "model": args.model,
        "rows": len(split.ids),
        "tokens": runs[next(iter(runs))][0]["tokens"],
        "threads": torch.get_num_threads(),
        "tokens_per_second": {k: round(v, 1) for k, v in best.items()},
        "ratio_vs_hf_trainer": {k: round(v / baseline, 2) for k, v in best.items()},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
