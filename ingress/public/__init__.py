"""The ingress node's public front ends: HTTP/1.1 over TCP and TLS (`PublicServer`).

The composition root builds a `PublicServer` with a `Gateway` (routing and agent leases),
the node's `IngressMetrics` and a callable returning the current `HttpLimits`, then calls
`listen` for each listener and `drain` at shutdown.
"""

from ingress.public.gateway import Gateway
from ingress.public.limits import HttpLimits
from ingress.public.server import PublicServer
from ingress.public.tls import SniCertificates

__all__ = ["Gateway", "HttpLimits", "PublicServer", "SniCertificates"]
