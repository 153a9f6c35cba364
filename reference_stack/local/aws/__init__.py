"""The local ``aws`` service: moto behind the DynamoDB capacity governor (see NOTES.md)."""
