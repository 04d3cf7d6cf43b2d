"""Configuration: the params schema (:mod:`.schema`), reading params.yaml (:mod:`.params`)
and composing it from conf/ (:mod:`.compose`)."""
