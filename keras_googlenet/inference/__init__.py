"""Using trained models: the `.keras` loader, predictions, the paper's multi-crop evaluation, metrics and plots."""
