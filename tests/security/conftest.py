from tests.auth.conftest import auth_client, auth_settings, tokens

__all__ = ["auth_client", "auth_settings", "tokens"]
