"""loadcheck: load-test and verify a serverless API stack (API Gateway HTTP API, Lambda,
DynamoDB, OpenSearch), against AWS or against its own local emulation."""

__version__ = "0.1.0"
