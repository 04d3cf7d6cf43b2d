"""The one place that imports Great Expectations, with its telemetry off.

``GX_ANALYTICS_ENABLED=false`` is set (unless the caller set it) before the import, and
each context also turns analytics off itself (``engine.new_context``)."""

from __future__ import annotations

import os

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import great_expectations as gx  # noqa: E402
import great_expectations.expectations as gxe  # noqa: E402

__all__ = ["gx", "gxe"]
