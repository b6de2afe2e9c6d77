"""Rate limits per source key and per client IP (the `limits` library, in process memory:
each replica limits what it serves): what ingest's sources and public forms send, and the
wrong admin or viewer tokens any service is sent (`shared.http`)."""

import ipaddress
import math
import time

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter


class RateLimited(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"rate limited, retry after {retry_after}s")
        self.retry_after = retry_after


class RateLimits:
    """`per_key` guards what one source may send; `per_ip` guards the public endpoints and
    failed key checks; `per_form_post` the public form posts, which a person sends once or
    twice and a bot by the thousand, in a budget of their own. A limit is "N/second;M/minute"
    (any of second, minute, hour, day); an empty one is off."""

    def __init__(self, per_key: str, per_ip: str, per_form_post: str = "") -> None:
        self._limiter = SlidingWindowCounterRateLimiter(MemoryStorage())
        self._per_key = parse_many(per_key) if per_key else []
        self._per_ip = parse_many(per_ip) if per_ip else []
        self._per_form_post = parse_many(per_form_post) if per_form_post else []

    async def check_key(self, key_id: str) -> None:
        await self._hit(self._per_key, "key", key_id)

    async def check_ip(self, ip: str) -> None:
        await self._hit(self._per_ip, "ip", client_block(ip))

    async def check_form_post(self, ip: str) -> None:
        await self._hit(self._per_form_post, "form", client_block(ip))

    async def refuse_spent_ip(self, ip: str) -> None:
        """RateLimited when the client has no request left in its budget; counts nothing."""
        for item in self._per_ip:
            if not await self._limiter.test(item, "ip", client_block(ip)):
                await self._refuse(item, "ip", client_block(ip))

    async def _hit(self, items: list[RateLimitItem], kind: str, name: str) -> None:
        for item in items:
            if not await self._limiter.hit(item, kind, name):
                await self._refuse(item, kind, name)

    async def _refuse(self, item: RateLimitItem, kind: str, name: str) -> None:
        stats = await self._limiter.get_window_stats(item, kind, name)
        raise RateLimited(max(1, math.ceil(stats.reset_time - time.time())))


def client_block(ip: str) -> str:
    """What a client's requests are counted by: an IPv4 address, or an IPv6 address's /64. One
    host is given a whole /64 and may send each request from another address in it: counted by
    address, it had a limit of its own for each of 2**64 addresses (found by a review)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network((address, 64), strict=False))
    return str(address)
