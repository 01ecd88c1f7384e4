"""Health probes and Prometheus metrics (ops/)."""
