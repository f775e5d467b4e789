"""Retrieval: embeddings, candidate sets and libraries, scores and metrics, evaluation, non-learned
baselines, spectrum matching and re-ranking."""
