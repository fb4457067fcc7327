"""Around the pass: the sidecar loop, health and metrics endpoints, hooks."""
