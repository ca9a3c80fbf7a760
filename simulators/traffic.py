"""Believable log lines for simulated services, so the console and alerts have real content.

Each service has its own message templates, error codes (`PAY-502`) and response-time
threshold. Levels follow a configurable mix (INFO 80 %, WARN 12 %, ERROR 6 %, FATAL 2 %
by default). WARN lines carry a response time, usually above the service's threshold
(a slow call) and sometimes below it (a warning for another reason), so threshold alerts
have both cases to tell apart. ERROR and FATAL lines carry an error code and message.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Final

from backend.schemas import ErrorDetails, Level, Log, now_iso

DEFAULT_MIX: Final[Mapping[Level, float]] = {
    Level.INFO: 0.80,
    Level.WARN: 0.12,
    Level.ERROR: 0.06,
    Level.FATAL: 0.02,
}
SLOW_WARN_SHARE: Final = 0.75
"""Share of WARN lines whose response time is above the threshold."""


@dataclass(frozen=True, slots=True)
class ServiceProfile:
    """What one kind of service talks about; `{name}` fields are filled in at random."""

    name: str
    short: str
    threshold_ms: float
    info: tuple[str, ...]
    warn: tuple[str, ...]
    errors: tuple[tuple[str, str], ...]
    fatal: tuple[tuple[str, str], ...]


PROFILES: Final[tuple[ServiceProfile, ...]] = (
    ServiceProfile(
        "PaymentService",
        "payment",
        800.0,
        info=(
            "Payment {payment_id} captured for order {order_id}: {amount} {currency}",
            "Card authorization approved for customer {customer_id}",
            "Refund {payment_id} issued: {amount} {currency}",
            "Settlement batch {batch} closed with {count} transactions",
        ),
        warn=(
            "Card network responded slowly for payment {payment_id}",
            "Retrying authorization for order {order_id} (attempt {attempt}/3)",
            "Fraud check took longer than usual for customer {customer_id}",
        ),
        errors=(
            ("PAY-502", "Payment gateway returned 502 Bad Gateway for payment {payment_id}"),
            ("PAY-402", "Card declined for order {order_id}: insufficient funds"),
            ("PAY-409", "Duplicate capture rejected for payment {payment_id}"),
        ),
        fatal=(("PAY-500", "Ledger database unreachable; payments halted"),),
    ),
    ServiceProfile(
        "OrderService",
        "order",
        500.0,
        info=(
            "Order {order_id} created by customer {customer_id} with {count} items",
            "Order {order_id} confirmed, total {amount} {currency}",
            "Order {order_id} cancelled by customer {customer_id}",
            "Cart {cart_id} converted to order {order_id}",
        ),
        warn=(
            "Inventory reservation slow for order {order_id}",
            "Order {order_id} waiting on payment confirmation (attempt {attempt}/3)",
        ),
        errors=(
            ("ORD-404", "Order {order_id} not found"),
            ("ORD-422", "Order {order_id} rejected: item {sku} out of stock"),
            ("ORD-503", "Payment service unavailable while placing order {order_id}"),
        ),
        fatal=(("ORD-500", "Order event journal corrupted at offset {offset}"),),
    ),
    ServiceProfile(
        "InventoryService",
        "inventory",
        300.0,
        info=(
            "Reserved {count} units of {sku} for order {order_id}",
            "Restocked {sku} in warehouse {warehouse}: {count} units",
            "Stock level of {sku} is {count}",
        ),
        warn=(
            "Stock of {sku} below reorder point in warehouse {warehouse}",
            "Slow stock lookup for {sku} in warehouse {warehouse}",
        ),
        errors=(
            ("INV-409", "Reservation conflict on {sku} for order {order_id}"),
            ("INV-504", "Warehouse {warehouse} stock query timed out"),
        ),
        fatal=(("INV-500", "Stock database replica lag exceeded {count} s; refusing writes"),),
    ),
    ServiceProfile(
        "ShippingService",
        "shipping",
        1000.0,
        info=(
            "Shipment {shipment_id} created for order {order_id}",
            "Label printed for shipment {shipment_id} via {carrier}",
            "Shipment {shipment_id} handed to {carrier}",
        ),
        warn=(
            "Carrier {carrier} rate quote slow for shipment {shipment_id}",
            "Address for order {order_id} needed normalization",
        ),
        errors=(
            ("SHP-502", "Carrier {carrier} API returned 502 for shipment {shipment_id}"),
            ("SHP-400", "Invalid postal code for order {order_id}"),
        ),
        fatal=(("SHP-500", "Label printer queue lost; shipments stalled"),),
    ),
    ServiceProfile(
        "AuthService",
        "auth",
        200.0,
        info=(
            "User {user} signed in from {ip}",
            "Token refreshed for user {user}",
            "User {user} signed out",
        ),
        warn=(
            "Password hash verification slow for user {user}",
            "Repeated failed sign-ins for user {user} from {ip}",
        ),
        errors=(
            ("AUTH-401", "Invalid credentials for user {user} from {ip}"),
            ("AUTH-503", "Identity provider unreachable"),
        ),
        fatal=(("AUTH-500", "Signing key unavailable; cannot issue tokens"),),
    ),
    ServiceProfile(
        "NotificationService",
        "notification",
        1500.0,
        info=(
            "Email sent to customer {customer_id} for order {order_id}",
            "SMS delivered to customer {customer_id}",
            "Push notification queued for user {user}",
        ),
        warn=(
            "Email provider throttling; send to customer {customer_id} delayed",
            "Template render slow for order {order_id}",
        ),
        errors=(
            ("NTF-502", "SMS gateway returned 502 for customer {customer_id}"),
            ("NTF-550", "Mailbox unavailable for customer {customer_id}"),
        ),
        fatal=(("NTF-500", "Notification queue consumer crashed"),),
    ),
    ServiceProfile(
        "SearchService",
        "search",
        400.0,
        info=(
            "Query '{term}' returned {count} results",
            "Index segment merged for catalog shard {shard}",
        ),
        warn=("Slow query '{term}' on catalog shard {shard}",),
        errors=(("SRC-503", "Catalog shard {shard} unavailable"),),
        fatal=(("SRC-500", "Search index mapping corrupted on shard {shard}"),),
    ),
    ServiceProfile(
        "UserService",
        "user",
        300.0,
        info=(
            "Profile updated for user {user}",
            "Address added for customer {customer_id}",
        ),
        warn=("Profile lookup slow for user {user}",),
        errors=(("USR-404", "User {user} not found"),),
        fatal=(("USR-500", "User database connection pool exhausted"),),
    ),
)

_FIELDS: Final[Mapping[str, Callable[[random.Random], str]]] = {
    "payment_id": lambda r: f"pay_{r.getrandbits(40):010x}",
    "order_id": lambda r: f"ORD-{r.randint(100000, 999999)}",
    "customer_id": lambda r: f"C{r.randint(10000, 99999)}",
    "cart_id": lambda r: f"cart_{r.getrandbits(32):08x}",
    "shipment_id": lambda r: f"SHP{r.randint(1000000, 9999999)}",
    "amount": lambda r: f"{r.uniform(5, 900):.2f}",
    "currency": lambda r: r.choice(("EUR", "USD", "GBP")),
    "count": lambda r: str(r.randint(1, 40)),
    "batch": lambda r: str(r.randint(1000, 9999)),
    "attempt": lambda r: str(r.randint(1, 3)),
    "sku": lambda r: f"SKU-{r.randint(10000, 99999)}",
    "warehouse": lambda r: r.choice(("AMS-1", "FRA-2", "LHR-1", "IAD-3")),
    "carrier": lambda r: r.choice(("DHL", "UPS", "FedEx", "PostNL")),
    "user": lambda r: r.choice(("alice", "bob", "carol", "dave", "erin", "frank")),
    "ip": lambda r: f"10.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}",
    "term": lambda r: r.choice(("running shoes", "usb-c cable", "coffee", "desk lamp")),
    "shard": lambda r: str(r.randint(0, 11)),
    "offset": lambda r: str(r.randint(10**6, 10**9)),
}


class _Fields(dict[str, str]):
    """Template values made up on first use, so a template only pays for what it names."""

    def __init__(self, rng: random.Random) -> None:
        super().__init__()
        self._rng = rng

    def __missing__(self, key: str) -> str:
        value = _FIELDS[key](self._rng)
        self[key] = value
        return value


def profile_for(service_name: str) -> ServiceProfile:
    """The profile of `service_name`; unknown names get a generic copy of the first one."""
    for profile in PROFILES:
        if profile.name == service_name:
            return profile
    return replace(PROFILES[0], name=service_name, short=service_name.lower())


class Traffic:
    """Makes the log lines of one node."""

    def __init__(
        self,
        node_id: str,
        service_name: str,
        rng: random.Random | None = None,
        mix: Mapping[Level, float] = DEFAULT_MIX,
    ) -> None:
        self.node_id = node_id
        self.profile = profile_for(service_name)
        self._rng = rng or random.Random()
        self._levels = list(mix)
        self._weights = [mix[level] for level in self._levels]

    def log(self, level: Level | None = None) -> Log:
        """A log line at `level`, or at a level drawn from the mix."""
        rng = self._rng
        if level is None:
            level = rng.choices(self._levels, self._weights)[0]
        fields = _Fields(rng)
        profile = self.profile
        if level is Level.INFO:
            return self._log(level, rng.choice(profile.info).format_map(fields))
        if level is Level.WARN:
            threshold = profile.threshold_ms
            slow = rng.random() < SLOW_WARN_SHARE
            factor = rng.uniform(1.05, 4.0) if slow else rng.uniform(0.4, 0.95)
            return self._log(
                level,
                rng.choice(profile.warn).format_map(fields),
                response_time_ms=round(threshold * factor, 1),
                threshold_limit_ms=threshold,
            )
        code, text = rng.choice(profile.fatal if level is Level.FATAL else profile.errors)
        return self.error(code, text.format_map(fields), level)

    def error(self, code: str, message: str, level: Level = Level.ERROR) -> Log:
        """An ERROR (or FATAL) line with this error code and message."""
        return self._log(level, message, error_details=ErrorDetails(code, message))

    def burst_error(self) -> Log:
        """An ERROR line with the service's first error code, as a failing dependency repeats."""
        code, text = self.profile.errors[0]
        return self.error(code, text.format_map(_Fields(self._rng)))

    def _log(
        self,
        level: Level,
        message: str,
        *,
        response_time_ms: float | None = None,
        threshold_limit_ms: float | None = None,
        error_details: ErrorDetails | None = None,
    ) -> Log:
        return Log(
            log_id=str(uuid.uuid4()),
            node_id=self.node_id,
            log_level=level,
            message=message,
            service_name=self.profile.name,
            timestamp=now_iso(),
            response_time_ms=response_time_ms,
            threshold_limit_ms=threshold_limit_ms,
            error_details=error_details,
        )
