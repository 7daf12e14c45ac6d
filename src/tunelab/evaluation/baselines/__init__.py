"""Baselines that need no fine-tuning: majority, TF-IDF, frozen embeddings, the base model."""
