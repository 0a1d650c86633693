"""Users and their tokens.

A user token is `<user id>.<secret>`: it carries the user id so that a hot path can find the user
without a query, and only its SHA-256 is stored (the secret has 256 bits of entropy, so a plain
hash is enough; no password stretching is needed).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from app.db import UnitOfWork
from app.errors import Conflict, NotFound
from app.ids import new_id
from app.models.users import User
from app.services.lookup import find


@dataclass(frozen=True)
class NewUser:
    user: User
    token: str


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def user_id_from_token(token: str) -> str | None:
    user_id, dot, secret = token.partition(".")
    return user_id if dot and user_id and secret else None


def new_token(user_id: str) -> str:
    return f"{user_id}.{secrets.token_urlsafe(32)}"


def create_user(uow: UnitOfWork, name: str, email: str) -> NewUser:
    """Insert first and let the unique index decide a duplicate email (no check-then-insert race)."""
    user_id = new_id("usr")
    token = new_token(user_id)
    user = User(
        id=user_id,
        name=name,
        email=email,
        email_key=email.lower(),
        token_hash=hash_token(token),
        points=0,
    )
    uow.session.add(user)
    try:
        uow.commit()
    except IntegrityError:
        uow.rollback()
        raise Conflict(f"A user with email {email!r} already exists.") from None
    return NewUser(user, token)


def reissue_token(uow: UnitOfWork, user_id: str) -> str:
    """A new token for the user; the old one stops working."""
    user = get_user(uow, user_id)
    token = new_token(user.id)
    user.token_hash = hash_token(token)
    uow.commit()
    return token


def get_user(uow: UnitOfWork, user_id: str) -> User:
    user = find(uow.session, User, user_id)
    if user is None:
        raise NotFound(f"No user {user_id!r}.")
    return user


class Authenticator:
    """Who a user token belongs to, asking the database once per user and process.

    A token's hash changes only when the token is reissued, so the hash this process last
    verified for a user answers that user's next requests without a query: the hash of the
    token presented is compared with it, in constant time, and a wrong token is refused as
    before. A remembered hash is trusted for `max_age` seconds at most, so a reissued token's
    predecessor stops working everywhere within that time; at most `size` users are remembered.
    """

    def __init__(
        self, new_uow: Callable[[], UnitOfWork], size: int = 100_000, max_age: float = 300.0
    ) -> None:
        self.new_uow = new_uow
        self.size = size
        self.max_age = max_age
        self._known: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def user_id(self, token: str, now: float) -> str | None:
        user_id = user_id_from_token(token)
        if user_id is None:
            return None
        presented = hash_token(token)
        with self._lock:
            known = self._known.get(user_id)
        if known is None or now - known[1] > self.max_age:
            with self.new_uow() as uow:
                user = find(uow.session, User, user_id)
                if user is None:
                    return None
                known = (user.token_hash, now)
            self._remember(user_id, known)
        return user_id if hmac.compare_digest(known[0], presented) else None

    def _remember(self, user_id: str, known: tuple[str, float]) -> None:
        with self._lock:
            self._known[user_id] = known
            self._known.move_to_end(user_id)
            while len(self._known) > self.size:
                self._known.popitem(last=False)


def authenticate(uow: UnitOfWork, token: str) -> User | None:
    """The user whose token this is, or None; the hash is compared in constant time."""
    user_id = user_id_from_token(token)
    if user_id is None:
        return None
    user = find(uow.session, User, user_id)
    if user is None or not hmac.compare_digest(user.token_hash, hash_token(token)):
        return None
    return user
