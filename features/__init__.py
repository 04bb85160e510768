"""sse-screen features: formula parsing and vectorised composition featurizers."""
