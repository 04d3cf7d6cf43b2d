"""The pipeline's stages, one module each (prepare, validate, prompt, finetune, evaluate,
export), in the order of dvc.yaml's graph. Each module's ``run(params)`` reads its
inputs, checks them, and writes its outputs atomically; ``clipreid <stage>`` calls it."""

STAGES = ("prepare", "validate", "prompt", "finetune", "evaluate", "export")
