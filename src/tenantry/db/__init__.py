"""Storage: the only package that knows table shapes and dialects."""
