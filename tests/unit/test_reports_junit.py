"""junit.xml: valid against the Jenkins/Surefire JUnit schema, one testcase per check."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from loadcheck.bench.synthetic_reports import sample_checks, write_run
from loadcheck.core.results import CheckResult
from reports.data import build_report_data
from reports.junit import render_junit

# The subset of Jenkins' junit-10.xsd (jenkinsci/xunit-plugin, the "usual JUnit XSD") that a
# single <testsuite> document uses: element order and the attributes it defines.
JUNIT_XSD = """<?xml version="1.0" encoding="UTF-8"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" elementFormDefault="qualified">
  <xs:element name="failure"><xs:complexType mixed="true">
    <xs:attribute name="type" type="xs:string"/><xs:attribute name="message" type="xs:string"/></xs:complexType></xs:element>
  <xs:element name="error"><xs:complexType mixed="true">
    <xs:attribute name="type" type="xs:string"/><xs:attribute name="message" type="xs:string"/></xs:complexType></xs:element>
  <xs:element name="skipped"><xs:complexType mixed="true">
    <xs:attribute name="message" type="xs:string"/></xs:complexType></xs:element>
  <xs:element name="system-out" type="xs:string"/>
  <xs:element name="system-err" type="xs:string"/>
  <xs:element name="properties"><xs:complexType><xs:sequence>
    <xs:element name="property" minOccurs="0" maxOccurs="unbounded"><xs:complexType>
      <xs:attribute name="name" type="xs:string" use="required"/>
      <xs:attribute name="value" type="xs:string" use="required"/></xs:complexType></xs:element>
  </xs:sequence></xs:complexType></xs:element>
  <xs:element name="testcase"><xs:complexType><xs:sequence>
    <xs:choice minOccurs="0" maxOccurs="unbounded">
      <xs:element ref="skipped"/><xs:element ref="error"/><xs:element ref="failure"/>
      <xs:element ref="system-out"/><xs:element ref="system-err"/></xs:choice></xs:sequence>
    <xs:attribute name="name" type="xs:string" use="required"/>
    <xs:attribute name="classname" type="xs:string" use="required"/>
    <xs:attribute name="time" type="xs:decimal"/>
    <xs:attribute name="status" type="xs:string"/><xs:attribute name="assertions" type="xs:string"/>
  </xs:complexType></xs:element>
  <xs:element name="testsuite"><xs:complexType><xs:sequence>
    <xs:element ref="properties" minOccurs="0"/>
    <xs:element ref="testcase" minOccurs="0" maxOccurs="unbounded"/>
    <xs:element ref="system-out" minOccurs="0"/><xs:element ref="system-err" minOccurs="0"/></xs:sequence>
    <xs:attribute name="name" type="xs:string" use="required"/>
    <xs:attribute name="tests" type="xs:nonNegativeInteger" use="required"/>
    <xs:attribute name="failures" type="xs:nonNegativeInteger"/>
    <xs:attribute name="errors" type="xs:nonNegativeInteger"/>
    <xs:attribute name="skipped" type="xs:nonNegativeInteger"/>
    <xs:attribute name="time" type="xs:decimal"/>
    <xs:attribute name="timestamp" type="xs:string"/>
    <xs:attribute name="hostname" type="xs:string"/>
    <xs:attribute name="id" type="xs:string"/><xs:attribute name="package" type="xs:string"/>
  </xs:complexType></xs:element>
</xs:schema>
"""


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.fromstring(JUNIT_XSD.encode()))


def _xml(tmp_path: Path, checks: list[CheckResult]) -> etree._Element:
    run = write_run(tmp_path / "r", checks=checks, seconds=5, rate=5)
    return etree.fromstring(render_junit(build_report_data(run)).encode())


def test_junit_is_valid_and_maps_statuses(tmp_path: Path, schema: etree.XMLSchema) -> None:
    checks = sample_checks(failing=True) + [CheckResult("extra", "error", "could not read logs", reason="AccessDenied")]
    root = _xml(tmp_path, checks)
    schema.assertValid(root)
    assert root.tag == "testsuite"
    # five checks, the run's end and the verdict (a failure: a check failed)
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == ("7", "2", "1", "1")
    cases = {c.get("name"): c for c in root.findall("testcase")}
    assert set(cases) == {
        "dynamodb_contents",
        "throttling",
        "access_logs",
        "security",
        "extra",
        "run_completed",
        "verdict",
    }
    assert cases["run_completed"].find("failure") is None
    assert "dynamodb_contents failed" in cases["verdict"].find("failure").get("message")
    fail = cases["dynamodb_contents"].find("failure")
    assert fail is not None and fail.get("message") == "2 acknowledged writes missing from EventLog"
    out = cases["dynamodb_contents"].findtext("system-out")
    assert '"request_id": "req-3"' in out and '"lost": 2' in out  # evidence and figures
    assert cases["extra"].find("error") is not None and "AccessDenied" in cases["extra"].findtext("error")
    assert cases["security"].find("skipped").get("message") == "--only excluded it"
    assert cases["throttling"].find("failure") is None and cases["throttling"].get("time") == "2.000"


def test_junit_survives_control_characters(tmp_path: Path, schema: etree.XMLSchema) -> None:
    bad = CheckResult("access_logs", "fail", "field \x00 was \x1b[31mred", evidence=[{"line": "a\x07b"}])
    root = _xml(tmp_path, [bad])
    schema.assertValid(root)
    assert "?" in root.find("testcase/failure").get("message")


def test_schema_rejects_a_broken_document(schema: etree.XMLSchema) -> None:
    # the schema is strict enough to fail: a testcase without classname is invalid
    doc = etree.fromstring(b'<testsuite name="x" tests="1"><testcase name="a"/></testsuite>')
    assert not schema.validate(doc)
