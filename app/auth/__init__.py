"""API tokens, roles and the dependencies that guard every endpoint."""
