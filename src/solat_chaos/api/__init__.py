"""The engine as a service: its HTTP API, the API token, the health panel, and `serve`,
the production composition. Imports `engine/` and `broker/` only."""
