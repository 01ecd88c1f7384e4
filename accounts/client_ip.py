"""The client's address for sign-in lockouts (django-axes' ``AXES_CLIENT_IP_CALLABLE``).

Behind ``AXES_PROXY_COUNT`` reverse proxies, each proxy appends the address it was called from
to ``X-Forwarded-For`` (nginx's ``$proxy_add_x_forwarded_for``), so the client's address is the
N-th from the right; anything further left came from the client and can be forged. Without
proxies, or when the header does not have that many addresses (a request that did not come
through them), ``REMOTE_ADDR`` is the address. django-axes would read the header only through
django-ipware, which is not installed: it then locked out the proxy's address, i.e. everyone.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str | None:
    remote = request.META.get("REMOTE_ADDR")
    count = getattr(settings, "PROXY_COUNT", 0)
    if not count:
        return remote
    chain = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
             if part.strip()]
    if len(chain) < count:
        return remote
    candidate = chain[-count]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote
