"""sse-screen experiments: tracked (MLflow) training entry points for the models."""
