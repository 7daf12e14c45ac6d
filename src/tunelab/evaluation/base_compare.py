"""What fine-tuning starts from: the untrained model scored on the same splits, before training.

`base_model` is the base model as it is (zero-shot for a chat model, the masked-LM perplexity
of an encoder, ...); `base_few_shot` (causal-lm) is the base model with a few training examples
as earlier turns of each conversation, the prompt-engineering alternative to fine-tuning.
"""

from __future__ import annotations


def base_scores(model, task, feats: dict, data, cfg, tokenizer, score) -> dict:
    """{"base_model": {split: metrics}, "base_few_shot": {split: metrics, "shots": k}} for the
    validation and test splits; empty when the task has no base comparison."""
    if not getattr(task, "SCORE_BASE_MODEL", False):
        return {}
    pad_id, bs = tokenizer.pad_token_id, cfg.eval.batch_size
    splits = [n for n in ("validation", "test") if n in feats]
    print(f"base model: scoring {' and '.join(splits)} before training")
    out = {
        "base_model": {
            n: score(model, feats[n], data.labels, bs, pad_id, split=data.splits[n]) for n in splits
        }
    }
    from tunelab.evaluation.generation import split_samples

    last = splits[-1]
    out["base_model"][last].update(
        split_samples(model, task, data.splits[last], tokenizer, cfg, who="base model")
    )
    few_shot = getattr(task, "few_shot_featurize", None)
    if few_shot and cfg.eval.few_shot:
        print(f"base model: scoring with {cfg.eval.few_shot} training examples in each prompt")
        shots = {}
        for n in splits:
            fs = few_shot(
                data.splits[n],
                data.splits["train"],
                tokenizer,
                cfg.data.max_length,
                cfg.eval.few_shot,
                cfg.train.seed,
            )
            if fs is not None:
                shots[n] = score(model, fs, data.labels, bs, pad_id, split=data.splits[n])
        if shots:
            out["base_few_shot"] = {**shots, "shots": cfg.eval.few_shot}
    return out
