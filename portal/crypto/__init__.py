"""Field encryption at rest: envelope AES-256-GCM under versioned data keys, and blind indexes."""
