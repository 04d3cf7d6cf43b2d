"""Training: stage 1 (prompt learning), stage 2 (fine-tuning), checkpoints and resume."""
