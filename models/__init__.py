"""sse-screen models: gradient-boosted property models, uncertainty and persistence."""
