"""When the Docker API's certificates warn before they expire, on both clouds. Pure.

The warning comes `WARN_DAYS` before a certificate's end: the same window in which
`pulumi up` re-issues a leaf certificate (pulumi-tls `early_renewal_hours`), so the
warning says "run `pulumi up`" while that still renews it. A CA is never re-issued by
`pulumi up` (a new CA cuts off every client bundle); its warning asks for a rotation.
"""

from __future__ import annotations

import datetime

WARN_DAYS = 30
RENEW_HOURS = WARN_DAYS * 24
"""A leaf certificate is re-issued by the first `pulumi up` in its last 30 days."""


def _utc(end: str) -> datetime.datetime:
    when = datetime.datetime.fromisoformat(end)
    if when.tzinfo is None:
        raise ValueError(f"{end}: a certificate's end must carry its time zone (RFC 3339)")
    return when.astimezone(datetime.UTC)


def warning_at(validity_end: str, days: int = WARN_DAYS) -> str:
    """The EventBridge Scheduler one-time expression (`at(...)`, read in UTC) `days`
    before a certificate's end, given as pulumi-tls's `validity_end_time` (RFC 3339)."""
    return f"at({(_utc(validity_end) - datetime.timedelta(days=days)).strftime('%Y-%m-%dT%H:%M:%S')})"


def expiry_epoch(validity_end: str) -> int:
    """A certificate's end (RFC 3339) in seconds since the epoch: Key Vault's `exp` attribute."""
    return int(_utc(validity_end).timestamp())


def pem_expiry(pem: str) -> str:
    """A PEM certificate's end as RFC 3339 in UTC (for a CA the user provides)."""
    from cryptography import x509

    return x509.load_pem_x509_certificate(pem.encode()).not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")


def warning_message(cluster: str, certificate: str, validity_end: str) -> str:
    """What the warning says: which certificate, when it ends, what to do."""
    head = (f"swarmstack {cluster}: the Docker API {certificate} certificate expires at {validity_end} "
            f"(in {WARN_DAYS} days).")
    if certificate == "ca":
        return (f"{head} pulumi up does not renew a CA: rotate it (a new CA, then new server and client "
                "certificates; every admin needs the new clientTls bundle), see docs/operations.md, Rotating the "
                "Docker API certificates.")
    return (f"{head} Run pulumi up on the stack now: it re-issues certificates in their last {WARN_DAYS} days "
            "(see docs/operations.md, Rotating the Docker API certificates).")
