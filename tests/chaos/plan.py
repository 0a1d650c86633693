"""What a chaos run does and when: drawn from its seed alone, so one seed is one schedule.

A plan is a list of journeys (one buyer's order from placing it to its end) and a list of
faults, each at an offset in seconds from the start. What the system answers changes which ids
a journey acts on, never which journeys and faults there are, in what order or when.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass

# How an order starts.
PLAIN, WITH_COUPON, WITH_KEY, FLASH = "order", "order+coupon", "order+key", "flash purchase"
STARTS = (PLAIN, WITH_COUPON, WITH_KEY, FLASH)
START_WEIGHTS = (30, 25, 20, 25)

# How it goes on once it awaits payment.
PAY_CHECKOUT = "pay at checkout"
PAY_WITH_DUPLICATES = "pay, webhook sent again"  # and a stale success after it, out of order
DECLINE = "decline"
CANCEL = "cancel"
CANCEL_WHILE_PAYING = "cancel while paying"  # the success may land on a cancelled order
TIME_OUT = "let it time out"
PAY_AFTER_TIMEOUT = "pay after the timeout"
FATES = (PAY_CHECKOUT, PAY_WITH_DUPLICATES, DECLINE, CANCEL, CANCEL_WHILE_PAYING, TIME_OUT, PAY_AFTER_TIMEOUT)
FATE_WEIGHTS = (30, 12, 10, 12, 10, 16, 10)

# The faults, each with how long it lasts (seconds, drawn within the range).
KILL_WORKER = "SIGKILL a worker"
RESTART_REDIS = "restart Redis, empty"
RESTART_POSTGRES = "restart PostgreSQL"
DROP_CONNECTIONS = "drop every database connection"
STOP_BROKER = "stop the broker"
PROVIDER_5XX = "provider answers 5xx"
PROVIDER_HANGS = "provider times out"
FAULTS = {
    KILL_WORKER: (0.5, 3.0),  # how long the worker stays dead
    RESTART_REDIS: (0.0, 0.0),
    RESTART_POSTGRES: (0.0, 2.0),
    DROP_CONNECTIONS: (0.0, 0.0),
    STOP_BROKER: (2.0, 8.0),
    PROVIDER_5XX: (2.0, 8.0),
    PROVIDER_HANGS: (2.0, 8.0),
}


@dataclass(frozen=True)
class Profile:
    name: str
    seconds: float  # how long operations and faults go on; settling comes after
    journeys: int
    faults_per_kind: int
    payment_timeout: int  # seconds, the service's ORDERSAGA_PAYMENT_TIMEOUT_SECONDS
    flash_units: int  # on sale, fewer than the flash purchases so that some are turned away


PROFILES = {
    "short": Profile(
        "short", seconds=75, journeys=240, faults_per_kind=2, payment_timeout=12, flash_units=40
    ),
    "long": Profile(
        "long", seconds=660, journeys=5400, faults_per_kind=32, payment_timeout=20, flash_units=900
    ),
}


@dataclass(frozen=True)
class Journey:
    number: int
    at: float
    start: str
    fate: str
    quantity: int  # units of one goods
    think: float  # seconds the buyer waits between seeing the checkout and acting


@dataclass(frozen=True)
class Fault:
    at: float
    kind: str
    lasts: float
    target: int  # which of several (workers): an index, taken modulo their number


@dataclass(frozen=True)
class Plan:
    seed: int
    profile: Profile
    journeys: tuple[Journey, ...]
    faults: tuple[Fault, ...]

    def digest(self) -> str:
        """A short fingerprint of the whole schedule: two runs with one seed print the same."""
        body = json.dumps([asdict(j) for j in self.journeys] + [asdict(f) for f in self.faults])
        return hashlib.sha256(body.encode()).hexdigest()[:16]


def build(seed: int, profile: Profile) -> Plan:
    rng = random.Random(seed)
    # Journeys start evenly spread, jittered; the last ones leave time to finish before the end.
    spread = profile.seconds * 0.8
    journeys = tuple(
        Journey(
            number=n,
            at=round(min(spread, max(0.0, n * spread / profile.journeys + rng.uniform(-0.5, 0.5))), 3),
            start=rng.choices(STARTS, START_WEIGHTS)[0],
            fate=rng.choices(FATES, FATE_WEIGHTS)[0],
            quantity=rng.choice((1, 1, 1, 2)),
            think=round(rng.uniform(0.0, 2.0), 3),
        )
        for n in range(profile.journeys)
    )
    faults = sorted(
        (
            Fault(
                at=round(rng.uniform(2.0, profile.seconds - 5.0), 3),
                kind=kind,
                lasts=round(rng.uniform(*FAULTS[kind]), 3),
                target=rng.randrange(1000),
            )
            for kind in FAULTS
            for _ in range(profile.faults_per_kind)
        ),
        key=lambda fault: fault.at,
    )
    return Plan(seed, profile, journeys, tuple(faults))
