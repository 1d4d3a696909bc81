"""Agency administration: staff accounts and roles, API clients, key rotation."""
