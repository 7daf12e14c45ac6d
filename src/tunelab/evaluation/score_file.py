"""Metrics of a trained model on one labelled file (`tunelab.api.evaluate`)."""

from __future__ import annotations

from tunelab.config.generation import GenerationConfig
from tunelab.evaluation.read_file import read_eval_split
from tunelab.evaluation.report.rows_label import mlm_rows
from tunelab.evaluation.scoring import scorer
from tunelab.tasks import get_task


def evaluate_file(
    trained, path, *, text=None, text_pair=None, label=None, batch_size: int = 64
) -> dict:
    """Metrics of a trained model on a labelled file; columns default to those it trained on.
    The saved model's task (tunelab.json) decides how rows are read and scored."""
    if get_task(trained.task).head_kind == "masked":  # texts masked as validation masks them
        return mlm_rows(trained, path, "model", batch_size=batch_size, text=text).metrics
    split = read_eval_split(trained, path, text=text, text_pair=text_pair, label=label)
    if trained.meta.generation and hasattr(split, "settings"):  # seq2seq: decode as trained
        split.settings.generation = GenerationConfig(**trained.meta.generation)
    feats = get_task(trained.task).featurize(split, trained.tokenizer, trained.max_length)
    pad_id = trained.tokenizer.pad_token_id
    return scorer(trained.task)(trained.model, feats, trained.labels, batch_size, pad_id)
