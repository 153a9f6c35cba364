"""``junit.xml``: one ``<testsuite>`` per run, one ``<testcase>`` per check (Jenkins/Surefire shape).

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

from reports.data import ReportData

_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: object) -> str:
    return _XML_BAD.sub("?", str(text))


def render_junit(d: ReportData) -> str:
    checks = d.checks
    suite = ET.Element(
        "testsuite",
        {
            "name": f"loadcheck.{d.run_id}",
            "tests": str(len(checks)),
            "failures": str(sum(c.status == "fail" for c in checks)),
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
    ET.indent(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"


class JunitRenderer:
    name = "junit"
    filename = "junit.xml"

    def render(self, data: ReportData, out_dir: Path) -> Path:
        path = out_dir / self.filename
        path.write_text(render_junit(data), encoding="utf-8")
        return path
