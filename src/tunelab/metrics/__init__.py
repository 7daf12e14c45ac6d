"""Metric maths: plain functions of predictions and references, no models or tokenizers.

classification.py, text.py (BLEU, chrF, ROUGE, exact match, token F1), text_rows.py,
stats.py (bootstrap, paired tests), squad.py (SQuAD exact match and F1).
"""
