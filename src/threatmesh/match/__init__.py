"""Detection: indicators matched against log events (exact observables and STIX patterns)."""
