"""What fine-tuning starts from: the untrained model scored on the same splits, before training.

`base_model` is the base model as it is (zero-shot for a chat model, the masked-LM perplexity
of an encoder, ...); `base_few_shot` (causal-lm) is the base model with a few training examples
as earlier turns of each conversation, the prompt-engineering alternative to fine-tuning.
"""

from __future__ import annotations

from tunelab.evaluation.baselines.few_shot import fit_few_shot, position_limit
from tunelab.inference.generation import split_samples


def base_scores(model, task, feats: dict, data, cfg, tokenizer, score) -> dict:
    """{"base_model": {split: metrics}, "base_few_shot": {split: metrics, "shots": k, ...}} for
    the validation and test splits (few_shot_scores); empty when the task has no base
    comparison."""
    if not task.score_base_model:
        return {}
    pad_id, bs = tokenizer.pad_token_id, cfg.eval.batch_size
    splits = [n for n in ("validation", "test") if n in feats]
    print(f"base model: scoring {' and '.join(splits)} before training")
    out = {
        "base_model": {
            n: score(model, feats[n], data.labels, bs, pad_id, split=data.splits[n]) for n in splits
        }
    }
    last = splits[-1]
    out["base_model"][last].update(
        split_samples(model, task, data.splits[last], tokenizer, cfg, who="base model")
    )
    if task.few_shot_featurize and cfg.eval.few_shot:
        few = few_shot_scores(model, task, splits, data, cfg, tokenizer, score)
        if few:
            out["base_few_shot"] = few
    return out


def few_shot_scores(model, task, splits: list[str], data, cfg, tokenizer, score) -> dict:
    """{split: metrics (with rows_by_shots), "shots": asked, "max_length": the prompts' length,
    "note": what fell short}. The prompts are sized for the shots (within what the model
    takes); a split where no example fits in front of any row is left out, with a note and a
    warning, rather than reported as few-shot when it is the base model scored again."""
    k, max_length = cfg.eval.few_shot, cfg.data.max_length
    limit = position_limit(model, tokenizer)
    print(f"base model: scoring with {k} training examples in each prompt")
    out: dict = {}
    notes = []
    for n in splits:
        fit = fit_few_shot(
            task,
            data.splits[n],
            data.splits["train"],
            tokenizer,
            max_length,
            limit,
            k,
            cfg.train.seed,
        )
        if fit is None:  # raw text: no turns to put examples in
            continue
        out["max_length"] = max(out.get("max_length", 0), fit.max_length)
        if fit.max_length > max_length:
            print(
                f"base model: {n} prompts with {k} examples need up to {fit.max_length} tokens; "
                f"scored at that length (data.max_length is {max_length}, the model takes {limit})"
            )
        short = sum(s < k for s in fit.shots)
        if fit.features is None:
            notes.append(
                f"{n}: no training example fits in front of any of its {len(fit.shots)} rows "
                f"within {fit.max_length} tokens{_why(limit, fit.available, k)}; left out, as it "
                "would be the base model scored again"
            )
        else:
            out[n] = {
                **score(
                    model,
                    fit.features,
                    data.labels,
                    cfg.eval.batch_size,
                    tokenizer.pad_token_id,
                    split=data.splits[n],
                ),
                "rows_by_shots": fit.rows_by_shots(),
            }
            if short:
                notes.append(
                    f"{n}: {short} of {len(fit.shots)} rows have fewer than {k} examples in front "
                    f"(rows by examples: {fit.rows_by_shots()}){_why(limit, fit.available, k)}"
                )
    if not out:
        return {}
    out["shots"] = k
    if notes:
        out["note"] = "; ".join(notes)
        print(f"warning: base_few_shot: {out['note']}")
    return out


def _why(limit: int | None, available: int, k: int) -> str:
    if available < k:
        return f" (the training split has only {available} short single-turn examples to show)"
    if limit is None:
        return " (the model does not say how many tokens it takes; data.max_length bounds them)"
    return f" (the model takes {limit} tokens)"
