"""A pool of ACME accounts that keeps every account inside certctl's per-account limits.

certctl allows each account 100 new orders an hour (a token bucket that starts full)
and 5 orders outstanding (pending, ready or processing). :func:`pool_size` says how
many accounts a rate needs; :class:`AccountPool` hands them out. Imports no pytest.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from ...errors import AcmeError, ConfigError
from .jose import AccountKey
from .models import AcmeAccount
from .problems import POOL_EXHAUSTED, AcmeProblem

if TYPE_CHECKING:
    from .client import AcmeClient

__all__ = ["AccountPool", "lease_problem", "pool_size"]


def pool_size(
    rate_per_s: float,
    duration_s: float,
    *,
    orders_per_hour: int = 100,
    concurrent_orders: int = 5,
    enrollment_budget_s: float = 5.0,
    margin: float = 0.2,
) -> int:
    """Accounts needed to offer ``rate_per_s`` enrollments for ``duration_s`` within
    certctl's per-account limits.

    ``ceil(rate * duration / orders_per_hour)`` keeps every account inside its hourly
    bucket (ignoring the refill, so it stays safe for runs up to an hour);
    ``ceil(rate * enrollment_budget_s / concurrent_orders)`` keeps the orders in flight
    per account under the cap while an enrollment takes up to ``enrollment_budget_s``.
    The larger of the two gets ``margin`` more (at least one more account).
    """
    if rate_per_s <= 0 or duration_s <= 0:
        raise ConfigError(
            f"pool_size needs a positive rate and duration, got {rate_per_s}/s for {duration_s} s."
        )
    if orders_per_hour <= 0 or concurrent_orders <= 0:
        raise ConfigError(
            "pool_size needs certctl's limits; a limit of 0 (disabled) needs no pool: "
            f"got orders_per_hour={orders_per_hour}, concurrent_orders={concurrent_orders}."
        )
    hourly = math.ceil(rate_per_s * duration_s / orders_per_hour)
    concurrent = math.ceil(rate_per_s * enrollment_budget_s / concurrent_orders)
    base = max(hourly, concurrent)
    return base + max(1, math.ceil(base * margin))


class AccountPool:
    """Accounts handed out round-robin, never beyond certctl's per-account limits.

    :meth:`lease` returns the next account that has an order slot free (``in_flight +
    stuck < concurrent_orders``) and a token in a client-side copy of certctl's hourly
    bucket (capacity ``orders_per_hour``, full at start, refilled continuously), taking
    the token; ``None`` when no account qualifies (the pool is too small for the rate,
    or failed enrollments left too many orders outstanding). :meth:`release` gives the
    slot back, or marks it stuck when the order may still be outstanding.
    """

    def __init__(
        self,
        accounts: Iterable[AcmeAccount],
        *,
        orders_per_hour: int = 100,
        concurrent_orders: int = 5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.accounts = list(accounts)
        if not self.accounts:
            raise ConfigError("an AccountPool needs at least one account.")
        self.orders_per_hour = orders_per_hour
        self.concurrent_orders = concurrent_orders
        self._clock = clock
        now = clock()
        for account in self.accounts:
            account.tokens = float(orders_per_hour)
            account.refilled_at = now
        self._cursor = 0
        self.leases = 0
        self.refusals = 0

    def __len__(self) -> int:
        return len(self.accounts)

    def _has_token(self, account: AcmeAccount, now: float) -> bool:
        if self.orders_per_hour <= 0:
            return True
        capacity = float(self.orders_per_hour)
        account.tokens = min(
            capacity, account.tokens + (now - account.refilled_at) * capacity / 3600.0
        )
        account.refilled_at = now
        return account.tokens >= 1.0

    def lease(self) -> AcmeAccount | None:
        now = self._clock()
        n = len(self.accounts)
        for i in range(n):
            account = self.accounts[(self._cursor + i) % n]
            if self.concurrent_orders > 0 and (
                account.in_flight + account.stuck >= self.concurrent_orders
            ):
                continue
            if not self._has_token(account, now):
                continue
            if self.orders_per_hour > 0:
                account.tokens -= 1.0
            account.in_flight += 1
            self._cursor = (self._cursor + i + 1) % n
            self.leases += 1
            return account
        self.refusals += 1
        return None

    def release(self, account: AcmeAccount, *, order_outstanding: bool = False) -> None:
        account.in_flight -= 1
        if order_outstanding:
            account.stuck += 1

    @classmethod
    async def create(
        cls,
        client: AcmeClient,
        size: int,
        *,
        alg: str = "ES256",
        contact: Sequence[str] = (),
        orders_per_hour: int = 100,
        concurrent_orders: int = 5,
    ) -> AccountPool:
        """Create ``size`` accounts, one fresh key each, before the timed run.

        Raises :class:`AcmeError` naming the first account that could not be created.
        """
        if size < 1:
            raise ConfigError(f"an account pool needs at least one account, not {size}.")
        accounts: list[AcmeAccount] = []
        for index in range(size):
            result = await client.new_account(AccountKey.generate(alg), contact=contact)
            if isinstance(result, AcmeProblem):
                raise AcmeError(
                    f"could not create ACME account {index + 1} of {size} at "
                    f"{client.directory.new_account}: {result}",
                    result,
                )
            accounts.append(result)
        return cls(accounts, orders_per_hour=orders_per_hour, concurrent_orders=concurrent_orders)


def lease_problem() -> AcmeProblem:
    """The problem recorded when :meth:`AccountPool.lease` finds no usable account."""
    return AcmeProblem(
        "lease",
        0,
        POOL_EXHAUSTED,
        "no account with a free order slot and an order token: the pool is too small for "
        "the rate, or failed enrollments left orders outstanding",
    )
