"""Signed feedback tokens: what makes a widget beacon count (`FeedbackSigner`).

Every related list (JSON and fragment) carries a token signed with the service's key over the
source article, the ordered list shown, the arm that ranked it, the index version and an
expiry. `POST /v1/events` counts an impression or a click only when its token vouches for that
target at that slot of that source's list, and has not expired.

A token is `<version>.<arm>.<expiry hour>[.<placement>][.<draws>][.<exploration>].<tags>` (the
placement only when the box names one other than `default`, the arm's draws `A<first>_<end>`
only for an arm of an experiment (`api.serving.experiment_arms`: the box's impression id must
draw into them), the exploration plan only for a list that may vary
(`api.serving.exploration_draw`), so that other lists keep their bytes): `tags` is the
URL-safe base64 of one truncated HMAC-SHA256 per entry, each over the header (so over the
placement and the plan too), the source, the entry's number and its target. The entries are
the list's slots, then its reserves.
So an event is checked against its own slot without sending the whole list back, and a token
is deterministic: the same list in the same hour gets the same bytes for every reader, so
lists stay cacheable (`Cache-Control: public`, ETags, CDNs).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import os
import re
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from api.serving.exploration_draw import ExplorationPlan, arm_draw, parse_segment, shown_at
from api.stores.event_schemas import Refusal
from index.index_errors import StorageError
from recommender.articles import DEFAULT_PLACEMENT
from recommender.settings import FeedbackSettings, IndexSettings

#: The arm of every list until experiments exist.
DEFAULT_ARM = "default"
#: Bytes of each slot's tag: forging one means guessing 64 bits, beacon by rate-limited beacon.
TAG_BYTES = 8
#: Tokens are issued per hour, so a list's bytes change at most once an hour.
HOUR = 3600
#: Where the key is kept when `RECOMMENDER_FEEDBACK_SECRET` is unset.
KEY_FILE = "feedback.key"
#: Tokens whose reading is remembered: a beacon's events share their box's token, and a list's
#: token is the same for all its readers for an hour, so most beacons read none anew.
READ_TOKENS = 4096

_HEADER = re.compile(
    r"(?P<version>[0-9A-Za-z-]{1,64})\.(?P<arm>[a-z0-9_-]{1,32})\.(?P<expiry>\d{1,9})"
    r"(?:\.(?P<placement>[a-z0-9_-]{1,32}))?"
    r"(?:\.A(?P<first>\d{1,5})_(?P<end>\d{1,5}))?"
    r"(?:\.(?P<exploration>E[0-9A-Z_]{1,64}))?"
)


@dataclass(frozen=True, slots=True)
class TokenHeader:
    """What a token says about its list besides the slots: signed with every slot's tag."""

    version: str
    arm: str
    placement: str
    expiry: int
    exploration: ExplorationPlan | None = None
    draws: tuple[int, int] | None = None
    """The arm draws (`arm_draw`) of the boxes that may show the list: [first, end)."""


def token_header(token: str) -> TokenHeader | None:
    """The header of `token` as written (not checked: `FeedbackSigner.check` does that)."""
    read = _read_token(token)
    return None if read is None else read.header


@dataclass(frozen=True, slots=True)
class _ReadToken:
    """A token split up: the header as signed, what it says, and the entries' tags."""

    signed: str
    header: TokenHeader
    tags: bytes | None
    """None when they are not base64."""


@functools.lru_cache(maxsize=READ_TOKENS)
def _read_token(token: str) -> _ReadToken | None:
    """`token` split up (None when its header is not one); remembered, as it is immutable."""
    signed, _, encoded = token.rpartition(".")
    header = _parse_header(signed)
    if header is None:
        return None
    try:
        tags = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError):
        tags = None
    return _ReadToken(signed, header, tags)


def _parse_header(signed: str) -> TokenHeader | None:
    parsed = _HEADER.fullmatch(signed)
    if parsed is None:
        return None
    placement = parsed["placement"] or DEFAULT_PLACEMENT
    exploration = None
    if parsed["exploration"] is not None:
        exploration = parse_segment(parsed["exploration"])
        if exploration is None:
            return None
    draws = None if parsed["first"] is None else (int(parsed["first"]), int(parsed["end"]))
    return TokenHeader(
        parsed["version"], parsed["arm"], placement, int(parsed["expiry"]), exploration, draws
    )


@dataclass(frozen=True, slots=True)
class FeedbackSigner:
    """Issues and checks the tokens of one service key; `clock` is the wall clock."""

    key: bytes
    token_hours: int
    clock: Callable[[], float] = time.time
    _keyed: hmac.HMAC = field(init=False, repr=False, compare=False)
    """The HMAC with the key already taken in: each tag copies it (half the cost of a new one)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "_keyed", hmac.new(self.key, digestmod=hashlib.sha256))

    def hour(self) -> int:
        """The hour tokens are issued in now (part of the result-cache key and ETag)."""
        return int(self.clock() // HOUR)

    @property
    def memory_seconds(self) -> int:
        """How long an accepted event must be remembered: beyond any token's life."""
        return (self.token_hours + 2) * HOUR

    def issue(
        self,
        source: str,
        targets: Sequence[str],
        *,
        version: str,
        arm: str,
        hour: int,
        placement: str = DEFAULT_PLACEMENT,
        reserves: Sequence[str] = (),
        exploration: ExplorationPlan | None = None,
        draws: tuple[int, int] | None = None,
    ) -> str:
        """The token of `targets` (in slot order) shown on `source`'s page in `placement`,
        issued in `hour`; with an `exploration` plan, of its `reserves` too; with `draws`, of an
        experiment's arm, for the boxes whose `arm_draw` is in [first, end) alone."""
        header = f"{version}.{arm}.{hour + 1 + self.token_hours}"
        if placement != DEFAULT_PLACEMENT:
            header += f".{placement}"
        if draws is not None:
            header += f".A{draws[0]}_{draws[1]}"
        entries = list(targets)
        if exploration is not None:
            if (exploration.shown, exploration.reserves) != (len(targets), len(reserves)):
                raise ValueError("the exploration plan is of another list")
            header += f".{exploration.segment()}"
            entries += reserves
        tags = b"".join(
            self._tag(header, source, entry, target)
            for entry, target in enumerate(entries, start=1)
        )
        return f"{header}.{base64.urlsafe_b64encode(tags).decode().rstrip('=')}"

    def check(
        self, token: str, source: str, target: str, slot: int, impression: str
    ) -> Refusal | None:
        """None when `token` vouches for `target` at `slot` of `source`'s list, as the box
        `impression` showed it (`shown_at`: an exploring box may show a reserve there), and is
        valid now; else why not (a bad signature, another list or position, another arm's
        list than the box's: `invalid_token`)."""
        read = _read_token(token)
        if read is None:
            return "invalid_token"
        parsed = read.header
        if (
            parsed.draws is not None
            and not parsed.draws[0] <= arm_draw(impression) < parsed.draws[1]
        ):
            return "invalid_token"
        shown = shown_at(parsed.exploration, impression, slot)
        if shown is None:
            return "invalid_token"
        if read.tags is None:
            return "invalid_token"
        entry = shown.entry
        tag = read.tags[(entry - 1) * TAG_BYTES : entry * TAG_BYTES]
        if len(tag) != TAG_BYTES or not hmac.compare_digest(
            tag, self._tag(read.signed, source, entry, target)
        ):
            return "invalid_token"
        if self.hour() >= parsed.expiry:
            return "expired_token"
        return None

    def _tag(self, header: str, source: str, entry: int, target: str) -> bytes:
        message = f"{header}|{source}|{entry}|{target}".encode()
        mac = self._keyed.copy()
        mac.update(message)
        return mac.digest()[:TAG_BYTES]


def feedback_key(settings: FeedbackSettings, data_dir: Path) -> bytes:
    """`RECOMMENDER_FEEDBACK_SECRET`, else the random key of `data_dir`, created on first use.

    Workers that start together agree: the key file is published with a hard link, which
    fails when another worker published one first; that one is then read.
    """
    if settings.secret is not None:
        return settings.secret.get_secret_value().encode()
    path = data_dir / KEY_FILE
    try:
        if not path.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            draft = data_dir / f".{KEY_FILE}.{secrets.token_hex(6)}"
            descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as file:
                file.write(secrets.token_hex(32))
                file.flush()
                os.fsync(file.fileno())
            try:
                os.link(draft, path)
            except FileExistsError:
                pass
            finally:
                draft.unlink()
        key = bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError) as exc:
        raise StorageError(
            f"cannot keep the feedback key in {path} ({exc}); "
            "set RECOMMENDER_FEEDBACK_SECRET or make the data directory writable"
        ) from exc
    if len(key) < 16:
        raise StorageError(f"{path} holds no usable feedback key; delete it to make a new one")
    return key


def build_signer(
    settings: FeedbackSettings, data_dir: Path, clock: Callable[[], float] = time.time
) -> FeedbackSigner:
    """The signer of a service, with its key (`feedback_key`)."""
    return FeedbackSigner(feedback_key(settings, data_dir), settings.token_hours, clock)


def shared_key_warning(settings: FeedbackSettings, index: IndexSettings) -> str | None:
    """Why beacons may be refused on other hosts: several hosts serve one catalog (a shared
    version store or database) while each signs with its own data directory's key."""
    if settings.secret is not None or (index.store_url is None and index.database.url is None):
        return None
    return (
        "RECOMMENDER_FEEDBACK_SECRET is unset while several hosts may serve this catalog "
        "(RECOMMENDER_STORE_URL or RECOMMENDER_DATABASE_URL): each host signs feedback tokens "
        "with its own key, and beacons reaching another host are refused; set the same secret "
        "on every host"
    )
