"""The holder's recovery phrase: 12 BIP-39 English words for the offline recovery key.

A holder's key set has device keys and one offline recovery key (Ed25519). The wallet shows
that key once, as a BIP-39 phrase, and never writes it to disk. This module is the pure part:
entropy in, words out, words back to entropy with errors a person can act on, and the key
derived from the phrase (docs/token-format.md, §1a "Recovery phrase").

The word list, its checksum and the seed stretching are those of BIP-39, through
``mnemonic`` (trezor's reference implementation): nothing is re-implemented here but the
error localisation. Entropy always comes from the caller; this module draws no random
numbers (the wallet takes 16 bytes from ``secrets.token_bytes`` and passes them in).

Reading a phrase is forgiving where BIP-39 allows it and precise where it cannot be:

- words are compared after NFKD normalisation (as BIP-39 says) and lower-casing, and any run
  of whitespace separates them;
- a word may be given by its first four letters, or by any longer beginning of it (BIP-39
  English words are unique by their first four letters);
- an error says which rule failed (:class:`PhraseError` ``kind``), where (``position``), and
  what the holder probably meant (``suggestions``). Its message names at most the few words
  it is about, never the whole phrase.
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Literal

from mnemonic import Mnemonic

from .errors import LicentiaError, Reason
from .keys import PrivateKey

__all__ = [
    "ENTROPY_BYTES",
    "PHRASE_WORDS",
    "RECOVERY_KEY",
    "PhraseError",
    "PhraseErrorKind",
    "check_confirmation",
    "new_phrase",
    "parse_phrase",
    "recovery_key",
    "recovery_key_from_phrase",
]

#: Words in a recovery phrase: 128 bits of entropy and a 4-bit checksum, 11 bits a word.
PHRASE_WORDS = 12
#: Bytes of entropy a phrase encodes.
ENTROPY_BYTES = 16
#: The HMAC-SHA512 key that turns the BIP-39 seed into the Ed25519 seed (not a signature
#: domain: nothing is ever signed under it).
RECOVERY_KEY = b"licentia.v1.recovery-key"

#: Letters that identify a BIP-39 English word.
_PREFIX = 4
#: Edit distance within which a word counts as a probable typo of another.
_NEAR = 2
#: At most this many words are offered for an unknown word.
_MAX_SUGGESTIONS = 3
#: A checksum message names the typed words only when it points at no more positions.
_MAX_NAMED = 3
#: An unknown word is echoed in a message at most this long.
_MAX_SHOWN = 12

PhraseErrorKind = Literal["length", "unknown_word", "checksum"]


class PhraseError(LicentiaError):
    """A recovery phrase that cannot be read (reason MALFORMED), with where and why.

    - ``kind``: ``"length"`` (not 12 words), ``"unknown_word"`` (a word is not in the BIP-39
      English list, even as a beginning of one) or ``"checksum"`` (every word is in the list
      but the checksum fails);
    - ``position``: for ``"unknown_word"``, the 1-based position of the first unknown word;
      ``None`` otherwise;
    - ``suggestions``: for ``"unknown_word"``, up to 3 list words closest to the typed one
      (words); for ``"checksum"``, the 1-based positions where one word, replaced by a
      nearby list word, makes the checksum valid (positions); empty for ``"length"``;
    - ``corrections``: for ``"checksum"``, each such ``(position, word)`` replacement;
      empty otherwise.
    """

    kind: PhraseErrorKind
    position: int | None
    suggestions: tuple[str, ...] | tuple[int, ...]
    corrections: tuple[tuple[int, str], ...]

    def __init__(
        self,
        kind: PhraseErrorKind,
        message: str,
        *,
        position: int | None = None,
        suggestions: tuple[str, ...] | tuple[int, ...] = (),
        corrections: tuple[tuple[int, str], ...] = (),
    ) -> None:
        super().__init__(Reason.MALFORMED, message)
        self.kind = kind
        self.position = position
        self.suggestions = suggestions
        self.corrections = corrections


@dataclass(frozen=True, slots=True)
class _Words:
    """The BIP-39 English word list and what is looked up in it."""

    bip39: Mnemonic
    words: tuple[str, ...]
    by_prefix: Mapping[str, str]


@cache
def _words() -> _Words:
    """The word list, read once from the ``mnemonic`` package on first use."""
    bip39 = Mnemonic("english")
    words = tuple(bip39.wordlist)
    by_prefix = {w[:_PREFIX]: w for w in words}
    # BIP-39 promises it; everything below relies on it.
    assert len(words) == 2048
    assert len(by_prefix) == len(words)
    return _Words(bip39, words, by_prefix)


def _check_entropy(entropy: bytes) -> bytes:
    if len(entropy) != ENTROPY_BYTES:
        raise LicentiaError(Reason.MALFORMED, f"recovery entropy is {ENTROPY_BYTES} bytes")
    return bytes(entropy)


def new_phrase(entropy: bytes) -> str:
    """The 12-word phrase of 16 bytes of entropy: lower-case words, single spaces.

    The caller supplies the entropy (from a CSPRNG); any other length is MALFORMED.
    """
    return _words().bip39.to_mnemonic(_check_entropy(entropy))


def _tokens(text: str) -> list[str]:
    """The words of ``text``: NFKD-normalised, lower-cased, split on any whitespace."""
    return unicodedata.normalize("NFKD", text).lower().split()


def _resolve(token: str) -> str | None:
    """The list word ``token`` names (itself, or a beginning of at least four letters)."""
    lookup = _words()
    word = lookup.by_prefix.get(token[:_PREFIX])
    if word is None:
        return None
    if token == word or (len(token) >= _PREFIX and word.startswith(token)):
        return word
    return None


def _distance(a: str, b: str, limit: int) -> int:
    """Edit distance, counting insertions, deletions, substitutions and swaps of two adjacent
    letters (optimal string alignment); any distance over ``limit`` is ``limit + 1``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            best = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                best = min(best, previous2[j - 2] + 1)
            current[j] = best
        if min(current) > limit:  # no later row has a smaller minimum
            return limit + 1
        previous2, previous = previous, current
    return min(previous[-1], limit + 1)


def _shared_prefix(a: str, b: str) -> int:
    n = 0
    for ca, cb in zip(a, b, strict=False):
        if ca != cb:
            break
        n += 1
    return n


@lru_cache(maxsize=256)
def _nearby(word: str, within: int) -> Mapping[int, tuple[str, ...]]:
    """List words other than ``word`` within edit distance ``within``, by distance (cached:
    the checksum search asks for the same words again and again)."""
    found: dict[int, list[str]] = {}
    for other in _words().words:
        d = _distance(word, other, within)
        if d <= within and other != word:
            found.setdefault(d, []).append(other)
    return {d: tuple(ws) for d, ws in found.items()}


def _suggest_words(token: str) -> tuple[str, ...]:
    """Up to three list words the holder probably meant by the unknown ``token``.

    The nearest tier wins: words at the smallest edit distance (at most 2; a 3-letter token
    that begins list words counts as distance 1 from each), the longest shared beginning
    first. With nothing that near, the word whose first four letters begin ``token``
    (``abandonment`` → ``abandon``), if any.
    """
    scored = {d: set(ws) for d, ws in _nearby(token, _NEAR).items()}
    if len(token) == _PREFIX - 1:
        scored.setdefault(1, set()).update(w for w in _words().words if w.startswith(token))
    for d in sorted(scored):
        ranked = sorted(scored[d], key=lambda w: (-_shared_prefix(token, w), w))
        return tuple(ranked[:_MAX_SUGGESTIONS])
    word = _words().by_prefix.get(token[:_PREFIX])
    return (word,) if word is not None and len(token) > _PREFIX else ()


def _shown(token: str) -> str:
    """``token`` as a message may show it: printable, and short."""
    text = "".join(c if c.isprintable() else "?" for c in token)
    return text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + "…"


def _quoted(words: Sequence[str]) -> str:
    """``'a'``, ``'a' or 'b'``, ``'a', 'b' or 'c'``."""
    q = [f"'{w}'" for w in words]
    return q[0] if len(q) == 1 else ", ".join(q[:-1]) + " or " + q[-1]


def _positions_text(positions: Sequence[int]) -> str:
    """``word 4``, ``words 4 and 9``, ``words 2, 4 and 9``."""
    if len(positions) == 1:
        return f"word {positions[0]}"
    return "words " + ", ".join(map(str, positions[:-1])) + f" and {positions[-1]}"


def _valid(words: Sequence[str]) -> bool:
    return _words().bip39.check(" ".join(words))


def _checksum_fixes(words: list[str]) -> tuple[tuple[int, str], ...]:
    """Each ``(position, word)`` that, put in place of the word there, makes the checksum
    valid, for list words within edit distance 2 of the one typed. The nearest tier wins:
    if some fix is one edit away, only those; otherwise those two edits away. (With a 4-bit
    checksum, one random replacement in 16 passes: keeping only the nearest fixes is what
    points at the mistyped word rather than at half the phrase.)"""
    by_distance: dict[int, list[tuple[int, str]]] = {}
    for i, typed in enumerate(words):
        for d, candidates in _nearby(typed, _NEAR).items():
            for candidate in candidates:
                trial = [*words[:i], candidate, *words[i + 1 :]]
                if _valid(trial):
                    by_distance.setdefault(d, []).append((i + 1, candidate))
    for d in sorted(by_distance):
        return tuple(by_distance[d])
    return ()


def _checksum_error(words: list[str]) -> PhraseError:
    fixes = _checksum_fixes(words)
    positions = tuple(sorted({p for p, _ in fixes}))
    head = "the words are all valid but the checksum fails"
    if not positions:
        message = f"{head}: a word is wrong or two words are swapped"
    elif len(positions) == 1:
        (p,) = positions
        meant = [w for q, w in fixes if q == p]
        message = (
            f"{head}: word {p} ('{words[p - 1]}') may be wrong (did you mean {_quoted(meant)}?)"
        )
    elif len(positions) <= _MAX_NAMED:
        parts = [
            f"word {p} ('{words[p - 1]}': did you mean {_quoted([w for q, w in fixes if q == p])}?)"
            for p in positions
        ]
        message = f"{head}: one of these may be wrong: " + "; ".join(parts)
    else:
        message = f"{head}: one of {_positions_text(positions)} may be wrong"
    return PhraseError("checksum", message, suggestions=positions, corrections=fixes)


def _read(text: str) -> list[str]:
    """The 12 list words of ``text``, or the :class:`PhraseError` of the first rule broken:
    length, then unknown words, then the checksum."""
    tokens = _tokens(text)
    if len(tokens) != PHRASE_WORDS:
        has = "no words" if not tokens else f"{len(tokens)} word" + ("s" * (len(tokens) != 1))
        raise PhraseError("length", f"the phrase has {has}; a recovery phrase has {PHRASE_WORDS}")
    resolved = [_resolve(t) for t in tokens]
    unknown = [i + 1 for i, w in enumerate(resolved) if w is None]
    if unknown:
        first = unknown[0]
        token = tokens[first - 1]
        suggestions = _suggest_words(token)
        message = f"word {first}, '{_shown(token)}', is not in the word list"
        if suggestions:
            message += f" (did you mean {_quoted(suggestions)}?)"
        if len(unknown) > 1:
            rest = unknown[1:]
            message += f"; {_positions_text(rest)} {'is' if len(rest) == 1 else 'are'} not either"
        raise PhraseError("unknown_word", message, position=first, suggestions=suggestions)
    words = [w for w in resolved if w is not None]
    if not _valid(words):
        raise _checksum_error(words)
    return words


def parse_phrase(text: str) -> bytes:
    """The 16 bytes of entropy of a recovery phrase; raises :class:`PhraseError`.

    Whitespace and case do not matter, a word may be written as its first four letters (or
    more), and the checks run in order: 12 words, each in the list, then the checksum.
    """
    return bytes(_words().bip39.to_entropy(_read(text)))


def recovery_key(entropy: bytes) -> PrivateKey:
    """The Ed25519 recovery key of the phrase of ``entropy``.

    BIP-39 seed = PBKDF2-HMAC-SHA512(the phrase, ``"mnemonic"``, 2048 rounds) (the empty
    passphrase); Ed25519 seed = HMAC-SHA512(key = ``licentia.v1.recovery-key``, BIP-39
    seed)[0:32].
    """
    bip39_seed = Mnemonic.to_seed(new_phrase(entropy), passphrase="")
    seed = hmac.new(RECOVERY_KEY, bip39_seed, hashlib.sha512).digest()[:32]
    return PrivateKey.from_seed(seed)


def recovery_key_from_phrase(text: str) -> PrivateKey:
    """:func:`parse_phrase` then :func:`recovery_key`: the same key however the phrase was
    typed (case, spacing, four-letter words)."""
    return recovery_key(parse_phrase(text))


def check_confirmation(phrase: str, answers: Mapping[int, str]) -> list[int]:
    """The 1-based positions in ``answers`` whose word is not the phrase's word there.

    The wallet asks the holder for a few words at positions it picks at random, to be sure
    the phrase was written down. Answers are read as phrase words are (case, surrounding
    whitespace, four-letter beginnings); an empty answer, or more than one word, is wrong.
    ``phrase`` must itself be a valid phrase (:class:`PhraseError` otherwise); a position
    outside 1–12 is a ``ValueError``.
    """
    words = _read(phrase)
    wrong = []
    for position in sorted(answers):
        if not 1 <= position <= PHRASE_WORDS:
            raise ValueError(f"word positions run from 1 to {PHRASE_WORDS}")
        given = _tokens(answers[position])
        if len(given) != 1 or _resolve(given[0]) != words[position - 1]:
            wrong.append(position)
    return wrong
