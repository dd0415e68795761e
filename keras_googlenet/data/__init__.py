"""Input data: sources, the tf.data pipeline, augmentation, multi-crop test sets and the shared preprocessing."""
