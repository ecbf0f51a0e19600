"""The strategy engine: pure Python, no database and no HTTP imports."""
