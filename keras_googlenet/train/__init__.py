"""Training: configurations (flag fields), the trainer, what a run writes, checkpoints and resume, distribution, the custom loop, fine-tuning."""
