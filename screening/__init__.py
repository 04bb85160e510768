"""sse-screen screening: checks, ranking, input/output, the CLI and the web service."""
