"""The cross-cutting rules every area shares, one home each: authorization, audit-event
builders, error types, request metadata, and the services wiring."""
