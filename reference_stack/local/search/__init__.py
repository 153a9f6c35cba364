"""The local ``search`` service: an OpenSearch-compatible REST API on tantivy, behind SigV4
(service ``es``) and the domain access policy.

    config.py     SearchConfig (the service's JSON config)
    analysis.py   analyzers: standard/simple/keyword/..., custom, shingles, edge n-grams
    mapping.py    mappings → tantivy schema; documents → tantivy documents
    engine.py     Engine / SearchIndex: indices, writes, realtime GET, refresh
    query.py      query DSL → tantivy queries
    searching.py  _search / _count / completion suggest, response shapes
    wire.py       request/response records, JSON bodies, the refresh parameter
    api.py        the REST routes (wire protocol, no sockets)
    bulk.py       the NDJSON _bulk API
    auth.py       SigV4 verification and domain access policy evaluation
    server.py     the process: HTTP server, service contract, lifecycle

Every departure from Amazon OpenSearch Service is listed in the docstring of the module that
departs and in docs/fidelity.md (section search).
"""
