"""Side by side: 2-4 trials of a study (curves, parameters, decisions) and a study's
history bounded for overlaying with others (`GET /studies/{id}/compare/...`)."""
