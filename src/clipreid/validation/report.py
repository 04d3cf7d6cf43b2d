"""The outcome of a validation run: one record per expectation, the printable summary and
the machine-readable report (``reports/validation.json``).

No Great Expectations import: the records are built from result dicts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from clipreid.validation.checks import CHECKS_BY_NAME, ERROR, WARN

PASS, FAIL, SKIPPED = "pass", "fail", "skipped"
COUNT_KEYS = (
    "element_count",
    "unexpected_count",
    "unexpected_percent",
    "missing_count",
    "observed_value",
)
PRINTED_EXAMPLES = 5


@dataclass
class ExpectationOutcome:
    """One expectation's verdict.

    ``name`` reads ``check: expectation_type(column)``; ``examples`` are offending rows
    (dicts of the frame's naming columns and the value at fault), at most
    ``max_examples``; ``status`` is ``pass``, ``fail`` or ``skipped`` (check not
    applicable, ``message`` says why)."""

    check: str
    severity: str
    status: str
    frame: str = ""
    expectation_type: str = ""
    column: str = ""
    counts: dict = field(default_factory=dict)
    examples: list[dict] = field(default_factory=list)
    message: str = ""

    @property
    def name(self) -> str:
        if not self.expectation_type:
            return self.check
        return f"{self.check}: {self.expectation_type}({self.column})"

    @property
    def failed(self) -> bool:
        return self.status == FAIL

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "check": self.check,
            "severity": self.severity,
            "status": self.status,
            "success": None if self.status == SKIPPED else self.status == PASS,
            "suite": self.frame,
            "expectation_type": self.expectation_type,
            "column": self.column,
            "description": CHECKS_BY_NAME[self.check].description,
            "counts": self.counts,
            "examples": self.examples,
            "message": self.message,
        }


def _column_of(kwargs: dict) -> str:
    if "column" in kwargs:
        return str(kwargs["column"])
    if "column_A" in kwargs:
        return f"{kwargs['column_A']}, {kwargs['column_B']}"
    return ""


def outcome_from_result(
    frame: str, check: str, severity: str, result: dict, max_examples: int
) -> ExpectationOutcome:
    """Build an :class:`ExpectationOutcome` from one GX expectation result dict."""
    config = result["expectation_config"]
    details = result.get("result") or {}
    exception = result.get("exception_info") or {}
    counts = {k: details[k] for k in COUNT_KEYS if k in details}
    naming = list(details.get("unexpected_index_column_names") or [])
    examples = [
        {
            **{k: row[k] for k in naming if k in row},
            **{k: v for k, v in row.items() if k not in naming},
        }
        for row in (details.get("partial_unexpected_index_list") or [])[:max_examples]
    ]
    message = ""
    if exception.get("raised_exception"):
        message = f"could not be evaluated: {exception.get('exception_message')}"
    elif not result["success"]:
        if config["type"] == "expect_column_to_exist":
            message = f"column '{config['kwargs']['column']}' is missing"
        elif "unexpected_count" in details:
            message = (
                f"{details['unexpected_count']} of {details.get('element_count')} rows unexpected"
            )
        else:
            message = "failed"
    return ExpectationOutcome(
        check=check,
        severity=severity,
        status=PASS if result["success"] else FAIL,
        frame=frame,
        expectation_type=config["type"],
        column=_column_of(config["kwargs"]),
        counts=counts,
        examples=examples,
        message=message,
    )


def format_example(example: dict) -> str:
    """One offending row as text: ``line 12: path=..., camid=9``."""
    parts = [f"{k}={v}" for k, v in example.items() if k != "line" and v not in ("", None)]
    text = ", ".join(parts)
    return f"line {example['line']}: {text}" if "line" in example else text


@dataclass
class ValidationOutcome:
    """What :func:`clipreid.validation.run_validation` found.

    ``ok`` is False when any expectation of an ``error`` check failed; ``str(outcome)``
    (or :meth:`summary`) lists the failures with example rows."""

    ok: bool
    dataset: str
    manifest: str
    expectations: list[ExpectationOutcome]
    summary_data: dict[str, Any] = field(default_factory=dict)
    report_path: str | None = None
    docs_index: str | None = None
    digests: dict[str, str] = field(default_factory=dict, repr=False)  # path -> SHA-256
    seconds: dict[str, float] = field(default_factory=dict, repr=False)  # not in the report

    @property
    def errors(self) -> list[ExpectationOutcome]:
        return [e for e in self.expectations if e.failed and e.severity == ERROR]

    @property
    def warnings(self) -> list[ExpectationOutcome]:
        return [e for e in self.expectations if e.failed and e.severity == WARN]

    def failed_checks(self, severity: str | None = None) -> list[str]:
        """Names of the checks with a failed expectation (of ``severity``, if given)."""
        names = [
            e.check
            for e in self.expectations
            if e.failed and (severity is None or e.severity == severity)
        ]
        return list(dict.fromkeys(names))

    def to_dict(self) -> dict:
        statuses = [e.status for e in self.expectations]
        return {
            "ok": self.ok,
            "dataset": self.dataset,
            "manifest": self.manifest,
            "statistics": {
                "expectations": len(statuses),
                "passed": statuses.count(PASS),
                "failed": statuses.count(FAIL),
                "skipped": statuses.count(SKIPPED),
                "failed_errors": len(self.errors),
                "failed_warnings": len(self.warnings),
            },
            "failed_checks": {"error": self.failed_checks(ERROR), "warn": self.failed_checks(WARN)},
            **self.summary_data,
            "expectations": [e.to_dict() for e in self.expectations],
            "data_docs": self.docs_index,
        }

    def summary(self) -> str:
        """Printable summary: verdict, split statistics, then each failed expectation with
        up to five offending rows."""
        verdict = "PASSED" if self.ok else "FAILED"
        lines = [f"Data validation of {self.dataset} ({self.manifest}): {verdict}"]
        statuses = [e.status for e in self.expectations]
        lines.append(
            f"  {len(statuses)} expectations: {statuses.count(PASS)} passed, "
            f"{len(self.errors)} failed (error), {len(self.warnings)} failed (warn), "
            f"{statuses.count(SKIPPED)} skipped"
        )
        for split, info in self.summary_data.get("splits", {}).items():
            lines.append(
                f"  {split}: {info['images']} images, {info['identities']} identities, "
                f"cameras {info['cameras']}"
            )
        for e in self.errors + self.warnings:
            label = "ERROR" if e.severity == ERROR else "WARN"
            lines.append(f"{label} {e.name} on {e.frame}: {e.message}")
            for example in e.examples[:PRINTED_EXAMPLES]:
                lines.append(f"    {format_example(example)}")
            more = e.counts.get("unexpected_count", len(e.examples)) - min(
                len(e.examples), PRINTED_EXAMPLES
            )
            if more > 0:
                lines.append(
                    f"    ... and {more} more"
                    + (f" (see {self.report_path})" if self.report_path else "")
                )
        if self.report_path:
            lines.append(f"report: {self.report_path}")
        if self.docs_index:
            lines.append(f"Data Docs: {self.docs_index}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()
