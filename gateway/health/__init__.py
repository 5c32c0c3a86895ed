"""Observability: Prometheus metrics, the health report, and rate-limited logging of repeated
problems.

May import nothing of the gateway.
"""
