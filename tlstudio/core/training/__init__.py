"""The training loop and what it needs: config, steps, batches, the embedding cache, events."""
