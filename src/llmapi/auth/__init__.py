"""Identity and access: API keys, OAuth2 JWTs, scopes and roles, resolved to a Principal."""
