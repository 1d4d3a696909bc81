"""The web layer: Litestar app factory, controllers and templates helpers. Thin by design."""
