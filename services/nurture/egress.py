"""Where nurture may send: the URLs admins type in (reps' and subscriptions' webhooks) must not
reach into the network Leadflow runs in. Every connection is checked at connect time against
the address it is about to use (after DNS, so a name that resolves, or re-resolves, to an
inside address is refused too): loopback, private, link-local (cloud metadata at
169.254.169.254), shared, reserved and multicast addresses are refused unless the allowlist
names them. In production a webhook URL must be https."""

import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
from aiohappyeyeballs import AddrInfoType

from shared import outgoing

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
LOOPBACK: tuple[Network, ...] = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
BLOCKED = "the address is not a public one (LEADFLOW_NURTURE_EGRESS_ALLOW can name it)"


# IPv6 addresses that reach an IPv4 one through a translator or tunnel (RFC 6052 NAT64, RFC
# 2765 SIIT's IPv4-translated ::ffff:0:0:0/96, RFC 3056 6to4, the deprecated IPv4-compatible
# form): judged by the IPv4 address they carry, so
# that 64:ff9b::a9fe:a9fe is cloud metadata and 2002:a00:1:: a private host, as they are where
# a NAT64 gateway or a 6to4 relay is on the way. NAT64's local-use prefix (RFC 8215) may place
# the IPv4 address anywhere: refused unless allowed.
NAT64 = ipaddress.ip_network("64:ff9b::/96")
NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")


def carried_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one is a way to, or None."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in NAT64 or address in IPV4_TRANSLATED or (address in IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


class AddressNotAllowed(OSError):
    """A connection refused by the egress policy, before it was made."""


@dataclass(frozen=True)
class EgressPolicy:
    allowed: Sequence[Network] = ()

    @classmethod
    def parse(cls, networks: str) -> "EgressPolicy":
        """`10.0.0.0/8, ::1` style: networks, or single addresses."""
        names = [n.strip() for n in networks.split(",") if n.strip()]
        return cls(tuple(ipaddress.ip_network(n, strict=False) for n in names))

    def permits(self, address: Address) -> bool:
        if any(address in network for network in self.allowed):
            return True
        if isinstance(address, ipaddress.IPv6Address):
            if address in NAT64_LOCAL:
                return False
            if (carried := carried_ipv4(address)) is not None:
                return self.permits(carried)
        return address.is_global and not address.is_multicast

    def socket_factory(self, addr_info: AddrInfoType) -> socket.socket:
        """For aiohttp's connector: the address is checked as the socket for it is made."""
        family, kind, proto, _, sockaddr = addr_info
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if not self.permits(address):
            raise AddressNotAllowed(BLOCKED)
        return socket.socket(family, kind, proto)

    def connector(self, **options: int) -> aiohttp.TCPConnector:
        return outgoing.connector(socket_factory=self.socket_factory, **options)

    def refuses_url(self, url: str, https_only: bool) -> str | None:
        """Why a webhook URL cannot be registered, or None. Names are resolved only when sent
        to (they may change); an address written in the URL is checked now."""
        parts = urlsplit(url)
        if https_only and parts.scheme != "https":
            return "must be https"
        try:
            address = ipaddress.ip_address((parts.hostname or "").strip("[]"))
        except ValueError:
            return None
        return None if self.permits(address) else BLOCKED


def failure_text(error: BaseException) -> str:
    """What the delivery log keeps of a failed attempt: short and generic, so that it tells an
    admin what to look at and tells nobody which inside ports are open."""
    if isinstance(error, AddressNotAllowed) or isinstance(error.__cause__, AddressNotAllowed):
        return "refused: " + BLOCKED
    if isinstance(error, aiohttp.ClientConnectorError) and isinstance(error.os_error, AddressNotAllowed):
        return "refused: " + BLOCKED
    if isinstance(error, TimeoutError | aiohttp.ServerTimeoutError):
        return "no answer in time"
    if isinstance(error, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError):
        return "TLS failed"
    return "could not connect or the connection broke"
