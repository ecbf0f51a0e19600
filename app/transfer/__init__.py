"""Moving a study between servers: one JSON document with everything it holds."""
