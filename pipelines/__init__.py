"""Prefect orchestration of the clipreid DVC pipeline.

Thin over DVC and git: the flows run `dvc`, `git` (and nothing else) through
`pipelines.commands`, read metrics JSON files, and never import the training code.

- `pipelines.run_pipeline`: every DVC stage in graph order, one Prefect task each;
- `pipelines.retrain`: retrain on data change, compare with the champion, promote or not;
- `pipelines.serve`: the retraining flow as a scheduled deployment (`flow.serve`).
"""
