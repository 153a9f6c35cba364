"""``summary.md``: a short Markdown summary for a pull-request comment.

Verdict first, then a table of routes, then one line per failed (or errored) check. Kept short
on purpose: the HTML report holds the plots and the evidence.
"""

from __future__ import annotations

from pathlib import Path

from loadcheck.core.thresholds import describe_entry
from reports.data import ReportData

ICON = {"pass": "✅", "fail": "❌", "error": "⚠️", "unchecked": "❔", "skipped": "⏭️"}


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def render_markdown(d: ReportData) -> str:
    passed = sum(1 for c in d.checks if c.status == "pass")
    lines = [f"### {ICON.get(d.verdict, '')} loadcheck {d.verdict.upper()}: run `{d.run_id}`", ""]
    total = sum(r.requests for r in d.routes)
    lines.append(
        f"{passed}/{len(d.checks)} checks passed · {total} requests in {d.duration_s:.0f} s · "
        f"target {_cell(d.target.get('kind', '?'))} `{_cell(d.target.get('domain', ''))}`"
    )
    if d.verdict_reasons:
        lines += ["", "**Why not a pass**", ""]
        lines += [f"- {_cell(r)}" for r in d.verdict_reasons]
    faults = (d.conditions or {}).get("faults") or {}
    if faults:
        lines += [
            "",
            "Faults active during the run: " + ", ".join(f"`{_cell(k)}={_cell(v)}`" for k, v in sorted(faults.items())),
        ]
    lines.append("")
    lines.append("| route | requests | req/s | errors | p50 ms | p95 ms | p99 ms |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|")
    for r in d.routes:
        lines.append(
            f"| `{_cell(r.route)}` | {r.requests} | {r.rps:.2f} | {r.failures} ({100 * r.error_rate:.1f}%) | "
            f"{_ms(r.latency_ms.get('p50'))} | {_ms(r.latency_ms.get('p95'))} | {_ms(r.latency_ms.get('p99'))} |"
        )
    failed = d.failed_checks
    if failed:
        lines += ["", "**Failed checks**", ""]
        lines += [f"- {ICON[c.status]} **{_cell(c.name)}** ({c.status}): {_cell(c.summary)}" for c in failed]
    failed_thresholds = [t for t in d.thresholds if not t.get("passed")]
    if failed_thresholds:
        lines += ["", "**Failed thresholds**", ""]
        lines += [f"- `{_cell(t['name'])}`: {_cell(describe_entry(t))}" for t in failed_thresholds]
    for note in d.notes:
        lines += ["", f"> {_cell(note)}"]
    lines += ["", "<sub>Full report: `report.html` in the run directory.</sub>", ""]
    return "\n".join(lines)


class MarkdownRenderer:
    name = "markdown"
    filename = "summary.md"

    def render(self, data: ReportData, out_dir: Path) -> Path:
        path = out_dir / self.filename
        path.write_text(render_markdown(data), encoding="utf-8")
        return path
