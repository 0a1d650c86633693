"""The contract's bounds, for what a request leads to as well as for its own fields."""

MAX_CENTS = 10**12  # any amount of money
MAX_COUNT = 10**9  # any count of units
