"""Ports a stack needs, checked before anything is imported or started (`t2m up` refuses in
well under a second when another stack holds one, naming the port)."""

from __future__ import annotations

import socket

from t2m.config import Settings


def port_in_use(settings: Settings) -> str | None:
    """Which of the stack's ports something already listens on (e.g. another `t2m up`), said
    with the setting that moves it; None if all are free. Asked before anything starts: else
    the dev server died on `address already in use` over and over while the worker joined the
    other stack's Temporal."""
    host, port = settings.temporal_address.rsplit(":", 1)
    wanted = [
        (host, int(port), "Temporal", "T2M_TEMPORAL_ADDRESS"),
        (host, settings.temporal_ui_port, "the Temporal Web UI", "T2M_TEMPORAL_UI_PORT"),
        (settings.api_host, settings.api_port, "the API", "T2M_API_PORT"),
    ]
    if settings.worker_metrics_port:
        metrics = (host, settings.worker_metrics_port, "worker metrics", "T2M_WORKER_METRICS_PORT")
        wanted.append(metrics)
    for addr, number, what, setting in wanted:
        family = socket.AF_INET6 if ":" in addr.strip("[]") else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is no user
            try:
                s.bind((addr.strip("[]"), number))
            except OSError as e:
                return (
                    f"port {number} on {addr} ({what}) is in use ({e.strerror}); is another"
                    f" t2m stack running? Stop it, or choose another port with {setting}"
                )
    return None
