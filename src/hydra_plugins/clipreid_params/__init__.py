"""Hydra imports every module under ``hydra_plugins`` when it looks for plugins; DVC points
it here with ``hydra.plugins_path = src`` (.dvc/config). Importing this registers the
``clipreid_check`` resolver, so `dvc exp run -S ...` checks the whole composed config
against clipreid's schema before it writes params.yaml or runs a stage."""

from clipreid.config.compose import register_resolver

register_resolver()
