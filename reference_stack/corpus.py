"""The search corpus (``reference_stack/data/``) and loading it into a search domain.

One loader for both targets: ``loadcheck corpus load`` (AWS, or the local stack through
``loadcheck stack outputs``) and the local stack's provisioning call :func:`load_corpus` with an
opensearch-py client signed as the search-admin role (:func:`signed_client`).

Loading is idempotent: the index is created with ``mapping.json`` only when it does not exist,
and each document is sent as a bulk ``create`` with its corpus id, so a document already in the
index is answered 409 and left as it is. A second load changes nothing and says so
(:attr:`LoadReport.summary`). A document whose text changed in the corpus keeps its indexed
version: delete the index to load the corpus afresh.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from loadcheck.core.errors import StackError

DATA_DIR = Path(__file__).resolve().parent / "data"
CHUNK_SIZE = 500  # documents per _bulk request (~40 KB for this corpus)

Progress = Callable[[int, int], None]  # (documents done, documents in the corpus)


def corpus_documents(data_dir: Path = DATA_DIR) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The index mapping and the documents (``*.jsonl``, one JSON object a line)."""
    mapping = json.loads((data_dir / "mapping.json").read_text(encoding="utf-8"))
    docs: list[dict[str, Any]] = []
    for path in sorted(data_dir.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                docs.append(json.loads(line))
    return mapping, docs


@dataclass
class LoadReport:
    index: str
    total: int
    index_created: bool = False
    created: int = 0
    unchanged: int = 0
    failed: list[dict[str, Any]] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.index_created or self.created > 0

    @property
    def summary(self) -> str:
        if self.failed:
            return f"index {self.index}: {len(self.failed)} of {self.total} documents failed"
        if not self.changed:
            return f"index {self.index}: all {self.total} documents already present; nothing changed"
        made = "created with its mapping, " if self.index_created else ""
        return f"index {self.index}: {made}{self.created} documents loaded, {self.unchanged} already present"


def _actions(index: str, docs: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for n, doc in enumerate(docs):
        # No `_index` in the action lines: the bulk request goes to <index>/_bulk, so the body names no
        # index and the loader stays inside the search-admin role's index scope (docs/aws-behaviour.md §9.3).
        yield {
            "_op_type": "create",
            "_id": str(doc.get("id", n)),
            "_source": {k: v for k, v in doc.items() if k != "id"},
        }


def load_corpus(
    client: Any,
    index: str,
    *,
    progress: Progress | None = None,
    data_dir: Path = DATA_DIR,
    chunk_size: int = CHUNK_SIZE,
) -> LoadReport:
    """Create ``index`` if missing and add every corpus document it lacks, with ``client`` (an
    opensearch-py client, see :func:`signed_client`); raises StackError naming the cause
    (refused, unreachable) and the fix."""
    # deferred: opensearch-py takes ~250 ms to import and `loadcheck --help` loads this module
    from opensearchpy import helpers
    from opensearchpy.exceptions import OpenSearchException, TransportError  # deferred: as above

    mapping, docs = corpus_documents(data_dir)
    report = LoadReport(index=index, total=len(docs))
    try:
        if not client.indices.exists(index=index):
            client.indices.create(index=index, body=mapping)
            report.index_created = True
        results = helpers.streaming_bulk(
            client, _actions(index, docs), index=index, chunk_size=chunk_size, raise_on_error=False, max_retries=3
        )
        for done, (ok, item) in enumerate(results, 1):
            info = item.get("create", {})
            if ok:
                report.created += 1
            elif info.get("status") == 409:
                report.unchanged += 1
            else:
                report.failed.append(info)
            if progress is not None and (done % chunk_size == 0 or done == report.total):
                progress(done, report.total)
        if report.created:
            client.indices.refresh(index=index)
    except TransportError as exc:
        raise StackError(
            f"search domain refused the corpus load into {index!r}: {exc.status_code} {exc.error} {str(exc.info)[:200]}",
            value=index,
            hint="the search-admin role must be allowed es:ESHttp* by the domain access policy "
            "(reference_stack/terraform/opensearch.tf); is --profile an identity that may assume it?",
        ) from exc
    except OpenSearchException as exc:
        raise StackError(
            f"search domain unreachable: {exc}",
            value=index,
            hint="check the search endpoint (terraform output search_endpoint) and your network",
        ) from exc
    if report.failed:
        first = report.failed[0]
        raise StackError(
            f"{report.summary}; first: {first.get('status')} {json.dumps(first.get('error'))[:200]}",
            value=index,
            hint="see the index mapping in reference_stack/data/mapping.json",
        )
    return report


def signed_client(endpoint: str, credentials: Any, region: str, *, ca_bundle: str | None = None) -> Any:
    """An opensearch-py client for ``endpoint`` signing with SigV4 (service ``es``) as
    ``credentials`` (botocore credentials, refreshable ones included)."""
    # deferred: opensearch-py takes ~250 ms to import and `loadcheck --help` loads this module
    from opensearchpy import OpenSearch, RequestsAWSV4SignerAuth, RequestsHttpConnection

    parts = urlsplit(endpoint)
    https = parts.scheme == "https"
    return OpenSearch(
        hosts=[{"host": parts.hostname, "port": parts.port or (443 if https else 80)}],
        http_auth=RequestsAWSV4SignerAuth(credentials, region, "es"),
        use_ssl=https,
        verify_certs=https,
        ca_certs=ca_bundle,
        connection_class=RequestsHttpConnection,
        timeout=60,
    )
