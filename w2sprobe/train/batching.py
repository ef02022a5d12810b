"""Tokenize once, then length-bucketed batches with dynamic (per micro-batch) padding.

Each epoch's order is a pure function of ``(seed, epoch)``, so a resumed run replays exactly
the batches it had not yet seen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

#: Batches are formed inside windows of this many batches sorted by length: similar lengths
#: share a batch (little padding) while the order across windows stays random.
BUCKET_BATCHES = 16


@dataclass
class Encoded:
    """Token ids per example (unpadded), truncated to ``max_length``."""

    input_ids: list[list[int]]
    pad_id: int

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter(
            (len(ids) for ids in self.input_ids), dtype=np.int64, count=len(self.input_ids)
        )

    def __len__(self) -> int:
        return len(self.input_ids)


def encode(tokenizer, texts: list[str], max_length: int) -> Encoded:
    if not texts:  # e.g. a label set without val labels; fast tokenizers fail on an empty batch
        return Encoded([], int(tokenizer.pad_token_id))
    ids = tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]
    return Encoded(
        [list(x) if len(x) else [tokenizer.pad_token_id] for x in ids], int(tokenizer.pad_token_id)
    )


def epoch_batches(lengths: np.ndarray, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """Row indices of every batch of one epoch.

    Rows are shuffled and bucketed by length; the batch order is shuffled too.
    """
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    window = batch_size * BUCKET_BATCHES
    batches = []
    for start in range(0, len(order), window):
        chunk = order[start : start + window]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def micro_batches(rows: np.ndarray, lengths: np.ndarray, size: int) -> list[np.ndarray]:
    """Split one batch into gradient-accumulation pieces of similar length."""
    rows = rows[np.argsort(lengths[rows], kind="stable")]
    return [rows[i : i + size] for i in range(0, len(rows), size)]


def collate(
    encoded: Encoded, rows: np.ndarray, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ``input_ids`` and ``attention_mask`` for ``rows``, padded to their longest."""
    seqs = [encoded.input_ids[i] for i in rows]
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), encoded.pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, seq in enumerate(seqs):
        ids[i, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[i, : len(seq)] = 1
    return ids.to(device), mask.to(device)


def inference_batches(lengths: np.ndarray, max_tokens: int, max_rows: int) -> list[np.ndarray]:
    """Length-sorted batches bounded by padded tokens and rows: no wasted padding at inference."""
    order = np.argsort(lengths, kind="stable")
    batches, current = [], []
    for index in order:
        width = int(lengths[index])  # ascending order: the newest row is the longest
        if current and (len(current) >= max_rows or width * (len(current) + 1) > max_tokens):
            batches.append(np.array(current))
            current = []
        current.append(index)
    if current:
        batches.append(np.array(current))
    return batches
