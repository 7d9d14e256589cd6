"""What every run starts its servers with, and the OS helpers a run needs, without the benchmark's heavy packages (the
soak runs in CI, where only the default dependency group is installed)."""

from __future__ import annotations

import resource
import socket

# Kindred's abuse limits, raised for the run so that the load generator measures fan-out and not the limits (they have
# their own tests). docs/performance.md states each one.
KINDRED_BENCH_ENV = {
    # The bench reads /healthz's socket count as an operator.
    "KINDRED_OPS_TOKEN": "bench-ops-token",
    # Default 100 a minute per account; S1 saturated sends thousands a minute from 50 accounts.
    "KINDRED_POSTS_PER_MINUTE": "100000000",
    # Default 32; the bench opens up to 50 sockets per account (10,000 sockets in S3 over 200 accounts).
    "KINDRED_SOCKETS_PER_ACCOUNT": "100000",
    # Sign-ups, sign-ins and joins: the run makes a few hundred accounts from one address in a minute.
    "KINDRED_SIGNUPS_PER_ADDRESS": "100000000",
    "KINDRED_LOGINS_PER_ADDRESS": "100000000",
    "KINDRED_LOGINS_PER_ACCOUNT": "100000000",
    "KINDRED_JOINS_PER_HOUR": "100000000",
    # Default 10 circles and 30 rooms an hour per account; S3 and S4 open a hundred rooms from one coach.
    "KINDRED_CIRCLES_PER_HOUR": "100000000",
    "KINDRED_ROOMS_PER_HOUR": "100000000",
    # Default 512 frames; at the saturating rate a socket can be a few hundred frames behind for a moment, and the
    # capacity phase must measure throughput, not the slow-consumer cut-off (which is tested on its own).
    "KINDRED_WS_SEND_QUEUE": "4096",
    # Default 20 client frames a second per socket; with --ws-posts every post is a frame, and a posting socket at
    # capacity sends more than that.
    "KINDRED_WS_FRAMES_PER_SECOND": "100000",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def raise_fd_limit() -> None:
    """Thousands of sockets need thousands of descriptors; the soft limit is often 1024."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
