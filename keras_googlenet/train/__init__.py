"""Training: flag-field configurations, the trainer, what a run writes, checkpoints, resume,
distribution, the custom loop and fine-tuning."""
