"""Great Expectations plumbing: a context, one pandas data asset, suite, validation
definition and checkpoint per frame, then the Data Docs.

The context is ephemeral (its stores in memory: a file context re-reads its YAML config
hundreds of times per run, several times slower) with one Data Docs site on the file
system, in a scratch folder; the caller copies the built site out
(``datadocs.publish_site``). Analytics and progress bars are off.
"""

from __future__ import annotations

from pathlib import Path

from clipreid.validation._gx import gx
from clipreid.validation.suites import Suite

DATASOURCE = "clipreid"
GX_SEVERITY = {"error": "critical", "warn": "warning"}


SITE = "local_site"


def new_context(site_dir: str | Path):
    """An ephemeral context whose Data Docs site is written to ``site_dir``; analytics
    and progress bars off."""
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    site = {
        "class_name": "SiteBuilder",
        "show_how_to_buttons": False,
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str(Path(site_dir).resolve()),
        },
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    }
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        data_docs_sites={SITE: site},
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def run_suites(
    context, suites: list[Suite], severity: dict[str, str], max_examples: int
) -> list[dict]:
    """Validate each suite's frame through its own checkpoint.

    Returns one dict per expectation, in plan order: ``frame``, ``check``, ``severity``
    and ``result`` (the expectation's validation result as a JSON-safe dict)."""
    source = context.data_sources.add_or_update_pandas(DATASOURCE)
    out = []
    for suite in suites:
        frame = suite.frame
        asset = source.add_dataframe_asset(frame.name)
        batch = asset.add_batch_definition_whole_dataframe(f"{frame.name}_all")
        gx_suite = context.suites.add_or_update(gx.ExpectationSuite(name=frame.name))
        for order, spec in enumerate(suite.specs):
            spec.expectation.meta = {
                "check": spec.check,
                "order": order,
                "clipreid_severity": severity[spec.check],
            }
            spec.expectation.severity = GX_SEVERITY[severity[spec.check]]
            gx_suite.add_expectation(spec.expectation)
        definition = context.validation_definitions.add_or_update(
            gx.ValidationDefinition(name=frame.name, data=batch, suite=gx_suite)
        )
        checkpoint = context.checkpoints.add_or_update(
            gx.Checkpoint(
                name=f"validate_{frame.name}",
                validation_definitions=[definition],
                actions=[],
                result_format={
                    # COMPLETE: Data Docs then list the offending rows by their naming
                    # columns; the report keeps the first `max_examples` of them.
                    "result_format": "COMPLETE",
                    "return_unexpected_index_query": False,
                    "unexpected_index_column_names": list(frame.index_columns),
                    "partial_unexpected_count": max_examples,
                },
            )
        )
        checkpoint_result = checkpoint.run(batch_parameters={"dataframe": frame.df})
        for validation in checkpoint_result.run_results.values():
            results = validation.to_json_dict()["results"]
            results.sort(key=lambda r: r["expectation_config"]["meta"]["order"])
            for result in results:
                check = result["expectation_config"]["meta"]["check"]
                out.append(
                    {
                        "frame": frame.name,
                        "check": check,
                        "severity": severity[check],
                        "result": result,
                    }
                )
    return out


def build_site(context) -> Path:
    """Render the Data Docs of all stored results; return the local site's folder."""
    context.build_data_docs(site_names=[SITE])
    return Path(context.get_config().data_docs_sites[SITE]["store_backend"]["base_directory"])
