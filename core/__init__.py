"""folkgen core: corpus, model, training, sampling, checkpoints, ABC checks and sound. No UI."""
