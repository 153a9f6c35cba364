"""The checks: after a run, prove what happened (docs/checks.md).

runner.py             run_checks / write_results / build_results / read_results
framework.py          CheckContext, Budget, polling and backoff, injected clock
dynamodb_contents.py  ledger vs table: lost, altered, phantom, indeterminate, collisions
throttling.py         capacity model (throttle_model.py), 429 + Retry-After, CloudWatch metrics
access_logs.py        one complete, correct access-log record per request (logsource.py)
security.py           refused probes as AWS refuses them (probe_http.py)
capacity.py           plain-JSON items sized by loadcheck.core.capacity (the rules the governor applies)
metrics.py            AWS/DynamoDB metrics for a run window
results_doc.py        results.json, schema version 1 (docs/results-schema.md)
synthetic.py          synthetic runs for tests and `loadcheck bench checks`
"""
