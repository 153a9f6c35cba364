"""``junit.xml``: one ``<testsuite>`` per run, one ``<testcase>`` per check (Jenkins/Surefire shape),
one per threshold, one for the run's end (``run_completed``: a failure when the run was
interrupted or aborted by ``--abort-on-fail``, naming the threshold) and one for the verdict itself (a failure listing the reasons whenever the verdict is
not a pass), so a CI that publishes junit.xml is never green on a run whose verdict is not PASS.

Mapping: ``fail`` -> ``<failure message=summary type="fail">``; ``error`` (the check could not
gather its inputs) -> ``<error>``; ``skipped`` -> ``<skipped message=reason>``. Figures and
evidence go to ``<system-out>`` as JSON lines; per-check ``time`` is the check's duration.
Element order inside a testcase follows the Surefire XSD (failure/error/skipped, then
system-out). Text is stripped of characters XML 1.0 cannot carry.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from loadcheck.core import rundir
from loadcheck.core.thresholds import describe_entry
from reports.data import ReportData

_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: object) -> str:
    return _XML_BAD.sub("?", str(text))


def _extra_cases(d: ReportData) -> list[tuple[str, str, str | None, str]]:
    """(classname, name, failure message or None, system-out) for thresholds, the run's end and the verdict."""
    out: list[tuple[str, str, str | None, str]] = []
    for t in d.thresholds:
        text = f"{t.get('name')}: {describe_entry(t)}"
        out.append(("loadcheck.thresholds", str(t.get("name")), None if t.get("passed") else text, text))
    ended = d.run_status or "unknown"
    why = (
        rundir.aborted_reason(d.aborted)
        if ended == "aborted"
        else f"the run ended {ended}: not all planned load was sent"
    )
    out.append(("loadcheck.run", "run_completed", None if ended == "complete" else why, f"run status: {ended}"))
    passed = d.verdict in ("pass", "unchecked")
    reasons = "; ".join(d.verdict_reasons) or d.verdict
    out.append(("loadcheck.run", "verdict", None if passed else f"verdict {d.verdict.upper()}: {reasons}", d.verdict))
    return out


def render_junit(d: ReportData) -> str:
    checks = d.checks
    extra = _extra_cases(d)
    suite = ET.Element(
        "testsuite",
        {
            "name": f"loadcheck.{d.run_id}",
            "tests": str(len(checks) + len(extra)),
            "failures": str(sum(c.status == "fail" for c in checks) + sum(e[2] is not None for e in extra)),
            "errors": str(sum(c.status == "error" for c in checks)),
            "skipped": str(sum(c.status == "skipped" for c in checks)),
            "time": f"{sum(c.duration_s or 0.0 for c in checks):.3f}",
            "timestamp": _clean((d.started_at or "")[:19]),
            "hostname": "loadcheck",
        },
    )
    props = ET.SubElement(suite, "properties")
    for k, v in (
        ("run_id", d.run_id),
        ("verdict", d.verdict),
        ("target", d.target.get("kind")),
        ("domain", d.target.get("domain")),
        ("run_dir", str(d.run_dir)),
    ):
        ET.SubElement(props, "property", {"name": k, "value": _clean(v if v is not None else "")})
    for c in checks:
        case = ET.SubElement(
            suite,
            "testcase",
            {"classname": f"loadcheck.checks.{c.name}", "name": c.name, "time": f"{c.duration_s or 0.0:.3f}"},
        )
        if c.status == "fail":
            el = ET.SubElement(case, "failure", {"message": _clean(c.summary), "type": "fail"})
            el.text = _clean(c.summary)
        elif c.status == "error":
            el = ET.SubElement(case, "error", {"message": _clean(c.summary), "type": "error"})
            el.text = _clean(c.reason or c.summary)
        elif c.status == "skipped":
            ET.SubElement(case, "skipped", {"message": _clean(c.reason or c.summary)})
        out = [f"{c.status}: {c.summary}"]
        if c.figures:
            out.append("figures: " + json.dumps(c.figures, sort_keys=True, default=str))
        out += ["evidence: " + json.dumps(e, sort_keys=True, default=str) for e in c.evidence]
        ET.SubElement(case, "system-out").text = _clean("\n".join(out))
    for classname, name, failure, text in extra:
        case = ET.SubElement(suite, "testcase", {"classname": classname, "name": _clean(name), "time": "0.000"})
        if failure is not None:
            el = ET.SubElement(case, "failure", {"message": _clean(failure), "type": "fail"})
            el.text = _clean(failure)
        ET.SubElement(case, "system-out").text = _clean(text)
    ET.indent(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"


class JunitRenderer:
    name = "junit"
    filename = "junit.xml"

    def render(self, data: ReportData, out_dir: Path) -> Path:
        path = out_dir / self.filename
        path.write_text(render_junit(data), encoding="utf-8")
        return path
