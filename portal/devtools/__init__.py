"""Development only: the built-in OpenID provider and the demo seed. Never used in production
configuration."""
