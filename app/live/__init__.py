"""Live updates: the SSE hub that turns committed changes into Server-Sent Events."""
