"""Data: readers per data-set format -> one manifest, the synthetic data set, the P x K
sampler, image decoding and augmentation."""
