"""Operations: liveness and readiness probes and Prometheus metrics (no models).

Orchestrators (compose, systemd, a load balancer) ask ``/health/live/`` and ``/health/ready/``
whether to restart or route to a process; Prometheus scrapes ``/metrics`` with a token. Above
every other app: it only reads their models to count queues.
"""
