"""The local API Gateway HTTP API: HTTPS on the custom domain, IAM (SigV4) routes, payload 2.0
Lambda proxy integrations, throttling, CORS and JSON access logs shipped to CloudWatch Logs.

Modules: ``config`` (the one config object), ``routing`` (host and route), ``auth`` (SigV4 +
identity policies), ``throttle``, ``cors``, ``payload`` (2.0 event/response), ``integration``
(Lambda Invoke client), ``access_log`` (render + ship), ``app`` (the pipeline, no sockets),
``server`` + ``tls`` (the wire), ``harness`` (test/bench helpers), ``__main__`` (the process).
"""
