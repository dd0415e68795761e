"""Training: the configuration, the trainer, checkpoints and resume, distribution, the custom loop, fine-tuning."""
