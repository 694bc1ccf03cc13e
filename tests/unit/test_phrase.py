"""The recovery phrase (licentia.phrase): BIP-39 as the standard says, errors that point at
the word to fix, and the recovery key derived from the phrase."""

from __future__ import annotations

import hashlib
import hmac

import nacl.signing
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mnemonic import Mnemonic

from licentia.errors import LicentiaError, Reason
from licentia.keys import PublicKey
from licentia.phrase import (
    ENTROPY_BYTES,
    PHRASE_WORDS,
    RECOVERY_KEY,
    PhraseError,
    check_confirmation,
    new_phrase,
    parse_phrase,
    recovery_key,
    recovery_key_from_phrase,
)

BIP39 = Mnemonic("english")
WORDS = BIP39.wordlist

#: The 128-bit English vectors of BIP-39 (trezor/python-mnemonic, vectors.json): entropy,
#: phrase, and the seed with the passphrase "TREZOR".
BIP39_VECTORS = [
    (
        "00000000000000000000000000000000",
        "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon "
        "abandon about",
        "c55257c360c07c72029aebc1b53c05ed0362ada38ead3e3e9efa3708e53495531f09a6987599d18264"
        "c1e1c92f2cf141630c7a3c4ab7c81b2f001698e7463b04",
    ),
    (
        "7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f",
        "legal winner thank year wave sausage worth useful legal winner thank yellow",
        "2e8905819b8723fe2c1d161860e5ee1830318dbf49a83bd451cfb8440c28bd6fa457fe1296106559a3"
        "c80937a1c1069be3a3a5bd381ee6260e8d9739fce1f607",
    ),
    (
        "80808080808080808080808080808080",
        "letter advice cage absurd amount doctor acoustic avoid letter advice cage above",
        "d71de856f81a8acc65e6fc851a38d4d7ec216fd0796d0a6827a3ad6ed5511a30fa280f12eb2e47ed2a"
        "c03b5c462a0358d18d69fe4f985ec81778c1b370b652a8",
    ),
    (
        "ffffffffffffffffffffffffffffffff",
        "zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo wrong",
        "ac27495480225222079d7be181583751e86f571027b0497b5b5d11218e0a8a13332572917f0f8e5a58"
        "9620c6f15b11c61dee327651a14c34e18231052e48c069",
    ),
    (
        "77c2b00716cec7213839159e404db50d",
        "jelly better achieve collect unaware mountain thought cargo oxygen act hood bridge",
        "b5b6d0127db1a9d2226af0c3346031d77af31e918dba64287a1b44b8ebf63cdd52676f672a290aae50"
        "2472cf2d602c051f3e6f18055e84e4c43897fc4e51a6ff",
    ),
    (
        "0460ef47585604c5660618db2e6a7e7f",
        "afford alter spike radar gate glance object seek swamp infant panel yellow",
        "65f93a9f36b6c85cbe634ffc1f99f2b82cbb10b31edc7f087b4f6cb9e976e9faf76ff41f8f27c99afd"
        "f38f7a303ba1136ee48a4c1e7fcd3dba7aa876113a36e4",
    ),
    (
        "eaebabb2383351fd31d703840b32e9e2",
        "turtle front uncle idea crush write shrug there lottery flower risk shell",
        "bdfb76a0759f301b0b899a1e3985227e53b3f51e67e3f2a65363caedf3e32fde42a66c404f18d7b058"
        "18c95ef3ca1e5146646856c461c073169467511680876c",
    ),
    (
        "18ab19a9f54a9274f03e5209a2ac8a91",
        "board flee heavy tunnel powder denial science ski answer betray cargo cat",
        "6eff1bb21562918509c73cb990260db07c0ce34ff0e3cc4a8cb3276129fbcb300bddfe005831350efd"
        "633909f476c45c88253276d9fd0df6ef48609e8bb7dca8",
    ),
]

#: The known answer of docs/token-format.md §1a (computed once with this module, pinned).
KAT_PHRASE = "legal winner thank year wave sausage worth useful legal winner thank yellow"
KAT_BIP39_SEED = (
    "878386efb78845b3355bd15ea4d39ef97d179cb712b77d5c12b6be415fffeffe"
    "5f377ba02bf3f8544ab800b955e51fbff09828f682052a20faa6addbbddfb096"
)
KAT_ED25519_SEED = "ec2ef6c9d0dac87546795b1ca3e551623fb9b0c3d39dce06db72b605272a17d9"
KAT_PUBLIC_KEY = "ed25519:ooeQkTNXW0RAfEfB4_jjQGvsXffy9JpNyN5RjblOMN8"

#: A valid phrase whose word 4 is "car" (found once by search, pinned): typed as "cat", the
#: checksum fails and only "car" at word 4 makes it pass within one edit.
CAR_ENTROPY = "106ba0e491265b705c24f165ed4e4406"
CAR_PHRASE = "away fringe decrease car grant return identify owner grass heavy much arrest"
#: A valid phrase of words with no other list word within two edits, and the same phrase with
#: words 2 and 3 swapped: no single-word fix exists, so nothing is pointed at.
SWAP_PHRASE = (
    "public tortoise quarter public sibling vacuum enroll embrace solution resemble endless alcohol"
)
SWAPPED = (
    "public quarter tortoise public sibling vacuum enroll embrace solution resemble endless alcohol"
)

entropies = st.binary(min_size=ENTROPY_BYTES, max_size=ENTROPY_BYTES)


def _error(text: str) -> PhraseError:
    with pytest.raises(PhraseError) as caught:
        parse_phrase(text)
    return caught.value


def _replace(phrase: str, position: int, word: str) -> str:
    words = phrase.split()
    words[position - 1] = word
    return " ".join(words)


# -- the standard ----------------------------------------------------------------------------


@pytest.mark.parametrize(("entropy_hex", "phrase", "seed_hex"), BIP39_VECTORS)
def test_the_bip39_english_vectors(entropy_hex: str, phrase: str, seed_hex: str) -> None:
    entropy = bytes.fromhex(entropy_hex)
    assert new_phrase(entropy) == phrase
    assert parse_phrase(phrase) == entropy
    assert Mnemonic.to_seed(phrase, passphrase="TREZOR").hex() == seed_hex
    # The seed is PBKDF2-HMAC-SHA512(phrase, "mnemonic" + passphrase, 2048), 64 bytes.
    stretched = hashlib.pbkdf2_hmac("sha512", phrase.encode(), b"mnemonicTREZOR", 2048)
    assert stretched.hex() == seed_hex


def test_sizes() -> None:
    assert (PHRASE_WORDS, ENTROPY_BYTES) == (12, 16)
    assert len(new_phrase(bytes(16)).split()) == PHRASE_WORDS


@pytest.mark.parametrize("size", [0, 15, 17, 32])
def test_entropy_of_another_size_is_refused(size: int) -> None:
    for call in (new_phrase, recovery_key):
        with pytest.raises(LicentiaError) as caught:
            call(bytes(size))
        assert caught.value.reason is Reason.MALFORMED


@given(entropies)
def test_round_trip(entropy: bytes) -> None:
    phrase = new_phrase(entropy)
    assert phrase == BIP39.to_mnemonic(entropy)
    assert phrase.split(" ") == phrase.split()
    assert all(w in WORDS for w in phrase.split())
    assert parse_phrase(phrase) == entropy
    assert parse_phrase(phrase.upper()) == entropy
    assert parse_phrase("  " + "\n\t ".join(w[:4] for w in phrase.split()) + " ") == entropy


# -- reading what a person typed -------------------------------------------------------------


def test_case_and_extra_whitespace_do_not_matter() -> None:
    typed = "  LEGAL   Winner\tthank\n\nYEAR wave  sausage worth useful legal winner thank Yellow "
    assert parse_phrase(typed) == bytes.fromhex("7f" * 16)


def test_four_letter_beginnings_are_enough() -> None:
    assert parse_phrase("lega winn than year wave saus wort usef lega winn than yell") == bytes(
        [0x7F] * 16
    )
    # Any longer beginning of a word too, but not a shorter one nor one running past it.
    assert parse_phrase(_replace(KAT_PHRASE, 6, "sausa")) == bytes([0x7F] * 16)
    assert _error(_replace(KAT_PHRASE, 6, "sau")).position == 6
    assert _error(_replace(KAT_PHRASE, 6, "sausages")).position == 6


def test_nfkd_normalisation() -> None:
    # Full-width letters are their ASCII letters after NFKD; a no-break space is a space.
    fullwidth = "ｌｅｇａｌ"
    assert parse_phrase(fullwidth + "\u00a0" + KAT_PHRASE.split(" ", 1)[1]) == bytes([0x7F] * 16)


# -- errors ----------------------------------------------------------------------------------


def test_an_unknown_word_is_located_with_suggestions() -> None:
    error = _error(_replace(KAT_PHRASE, 7, "abandom"))
    assert error.reason is Reason.MALFORMED
    assert isinstance(error, LicentiaError)
    assert (error.kind, error.position, error.suggestions) == ("unknown_word", 7, ("abandon",))
    assert str(error) == "word 7, 'abandom', is not in the word list (did you mean 'abandon'?)"


def test_suggestions_are_the_closest_words() -> None:
    # A swap of two letters is one edit.
    assert _error(_replace(KAT_PHRASE, 2, "wniner")).suggestions[0] == "winner"
    # An unfinished three-letter beginning suggests the words it begins.
    assert _error(_replace(KAT_PHRASE, 2, "aba")).suggestions == ("abandon",)
    # Typed past the end of a word.
    assert _error(_replace(KAT_PHRASE, 2, "abandonment")).suggestions == ("abandon",)
    # At most three, each within two edits.
    error = _error(_replace(KAT_PHRASE, 2, "boxx"))
    assert 1 <= len(error.suggestions) <= 3
    assert all(isinstance(w, str) and w in WORDS for w in error.suggestions)
    assert "box" in error.suggestions


def test_only_the_first_unknown_word_is_shown() -> None:
    typed = _replace(_replace(_replace(KAT_PHRASE, 3, "qqq"), 5, "xxxx"), 9, "yyyy")
    error = _error(typed)
    assert (error.kind, error.position) == ("unknown_word", 3)
    assert "qqq" in str(error)
    assert "xxxx" not in str(error)
    assert "yyyy" not in str(error)
    assert str(error).endswith("; words 5 and 9 are not either")


def test_a_real_word_typo_is_located_by_the_checksum() -> None:
    assert new_phrase(bytes.fromhex(CAR_ENTROPY)) == CAR_PHRASE
    error = _error(_replace(CAR_PHRASE, 4, "cat"))
    assert error.reason is Reason.MALFORMED
    assert (error.kind, error.position) == ("checksum", None)
    assert error.suggestions == (4,)
    assert error.corrections == ((4, "car"),)
    assert str(error) == (
        "the words are all valid but the checksum fails: word 4 ('cat') may be wrong "
        "(did you mean 'car'?)"
    )


def test_several_places_a_fix_may_be() -> None:
    # "year" typed as "cat": one edit from "cat" ("cart") or from "wave" fixes the checksum.
    error = _error(_replace(KAT_PHRASE, 4, "cat"))
    assert error.suggestions == (4, 5)
    assert error.corrections == ((4, "cart"), (5, "pave"), (5, "wage"))
    assert str(error) == (
        "the words are all valid but the checksum fails: one of these may be wrong: "
        "word 4 ('cat': did you mean 'cart'?); word 5 ('wave': did you mean 'pave' or 'wage'?)"
    )
    # Beyond three places, the message gives the positions only.
    swapped = KAT_PHRASE.split()
    swapped[0], swapped[1] = swapped[1], swapped[0]
    error = _error(" ".join(swapped))
    assert error.suggestions == (2, 3, 5, 10, 11, 12)
    assert str(error) == (
        "the words are all valid but the checksum fails: "
        "one of words 2, 3, 5, 10, 11 and 12 may be wrong"
    )


def test_swapped_words_with_no_single_fix() -> None:
    parse_phrase(SWAP_PHRASE)
    error = _error(SWAPPED)
    assert (error.kind, error.position, error.suggestions, error.corrections) == (
        "checksum",
        None,
        (),
        (),
    )
    assert str(error) == (
        "the words are all valid but the checksum fails: a word is wrong or two words are swapped"
    )


@settings(max_examples=25, deadline=None)
@given(entropies, st.integers(1, 12), st.data())
def test_a_one_edit_real_word_typo_is_always_among_the_suggestions(
    entropy: bytes, position: int, data: st.DataObject
) -> None:
    phrase = new_phrase(entropy)
    meant = phrase.split()[position - 1]
    near = [w for w in WORDS if w != meant and _one_edit(w, meant)]
    if not near:
        return
    typed = _replace(phrase, position, data.draw(st.sampled_from(near)))
    if BIP39.check(typed):
        return  # one time in 16 the typo keeps the checksum: nothing can notice it
    error = _error(typed)
    assert error.kind == "checksum"
    assert position in error.suggestions
    assert (position, meant) in error.corrections
    assert set(error.suggestions) == {p for p, _ in error.corrections}
    for p, w in error.corrections:
        assert parse_phrase(_replace(typed, p, w))


def _one_edit(a: str, b: str) -> bool:
    """True when one insertion, deletion, substitution or adjacent swap turns a into b."""
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diff) == 1:
            return True
        return (
            len(diff) == 2
            and diff[1] == diff[0] + 1
            and (a[diff[0]], a[diff[1]]) == (b[diff[1]], b[diff[0]])
        )
    if abs(len(a) - len(b)) != 1:
        return False
    short, long = sorted((a, b), key=len)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


@pytest.mark.parametrize("count", [11, 13])
def test_a_word_too_few_or_too_many(count: int) -> None:
    words = (KAT_PHRASE.split() * 2)[:count]
    error = _error(" ".join(words))
    assert (error.kind, error.position, error.suggestions) == ("length", None, ())
    assert str(error) == f"the phrase has {count} words; a recovery phrase has 12"


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_an_empty_phrase(text: str) -> None:
    error = _error(text)
    assert error.kind == "length"
    assert str(error) == "the phrase has no words; a recovery phrase has 12"


def test_one_word() -> None:
    assert str(_error("abandon")) == "the phrase has 1 word; a recovery phrase has 12"


def test_a_valid_24_word_bip39_phrase_is_the_wrong_length() -> None:
    phrase = BIP39.to_mnemonic(bytes(range(32)))
    assert BIP39.check(phrase)
    error = _error(phrase)
    assert error.kind == "length"
    assert str(error) == "the phrase has 24 words; a recovery phrase has 12"


def test_non_ascii_garbage() -> None:
    error = _error(" ".join(["日本語"] * 12))
    assert (error.kind, error.position, error.suggestions) == ("unknown_word", 1, ())
    assert str(error).startswith("word 1, '日本語', is not in the word list; words 2, 3,")
    # Control characters are not echoed, nor a long token in full.
    error = _error(_replace(KAT_PHRASE, 5, "wa\x00ve" + "é" * 30))
    assert error.position == 5
    assert "\x00" not in str(error)
    assert "…" in str(error)
    assert len(str(error)) < 120


@pytest.mark.parametrize(
    "typed",
    [
        _replace(KAT_PHRASE, 7, "abandom"),
        _replace(CAR_PHRASE, 4, "cat"),
        SWAPPED,
        " ".join(KAT_PHRASE.split()[:11]),
        KAT_PHRASE + " zoo",
    ],
)
def test_no_message_holds_the_phrase(typed: str) -> None:
    message = str(_error(typed))
    words = typed.split()
    shown = [w for w in set(words) if f"'{w}'" in message]
    assert len(shown) <= 3
    assert typed not in message
    assert " ".join(words[:3]) not in message


# -- the recovery key ------------------------------------------------------------------------


def test_the_known_answer() -> None:
    entropy = parse_phrase(KAT_PHRASE)
    assert Mnemonic.to_seed(KAT_PHRASE).hex() == KAT_BIP39_SEED
    key = recovery_key(entropy)
    assert key.seed.hex() == KAT_ED25519_SEED
    assert key.public.text == KAT_PUBLIC_KEY


def test_the_derivation_is_the_documented_one() -> None:
    # Rebuilt from hashlib, hmac and PyNaCl alone, as docs/token-format.md §1a says.
    bip39_seed = hashlib.pbkdf2_hmac("sha512", KAT_PHRASE.encode(), b"mnemonic", 2048)
    assert bip39_seed.hex() == KAT_BIP39_SEED
    assert RECOVERY_KEY == b"licentia.v1.recovery-key"
    ed25519_seed = hmac.new(RECOVERY_KEY, bip39_seed, hashlib.sha512).digest()[:32]
    assert ed25519_seed.hex() == KAT_ED25519_SEED
    public = bytes(nacl.signing.SigningKey(ed25519_seed).verify_key)
    assert PublicKey(public).text == KAT_PUBLIC_KEY


@settings(max_examples=10, deadline=None)
@given(entropies, entropies)
def test_the_key_is_deterministic_and_differs_by_phrase(a: bytes, b: bytes) -> None:
    assert recovery_key(a).seed == recovery_key(a).seed
    assert recovery_key(a).public == recovery_key_from_phrase(new_phrase(a).upper()).public
    if a != b:
        assert recovery_key(a).public != recovery_key(b).public


def test_the_key_from_however_the_phrase_was_typed() -> None:
    key = recovery_key_from_phrase("LEGA winn than  year wave saus wort usef lega winn than yell")
    assert key.public.text == KAT_PUBLIC_KEY
    assert "ec2ef6" not in repr(key)
    with pytest.raises(PhraseError):
        recovery_key_from_phrase(_replace(KAT_PHRASE, 1, "legl"))


# -- confirmation ----------------------------------------------------------------------------


def test_confirmation() -> None:
    # legal winner thank year wave sausage worth useful legal winner thank yellow
    assert check_confirmation(KAT_PHRASE, {2: "winner", 6: " Sausage ", 12: "yell"}) == []
    assert check_confirmation(KAT_PHRASE, {2: "winner", 6: "sausage", 12: "yellow"}) == []
    assert check_confirmation(KAT_PHRASE, {12: "yellow", 2: "winter", 6: ""}) == [2, 6]
    assert check_confirmation(KAT_PHRASE, {1: "legal winner", 3: "tha", 4: "year"}) == [1, 3]
    assert check_confirmation(KAT_PHRASE, {}) == []
    # The phrase itself is read like any other.
    assert check_confirmation(KAT_PHRASE.upper(), {1: "LEGAL"}) == []


def test_confirmation_needs_a_valid_phrase_and_real_positions() -> None:
    with pytest.raises(PhraseError):
        check_confirmation(_replace(KAT_PHRASE, 1, "wave"), {1: "wave"})
    for position in (0, 13, -1):
        with pytest.raises(ValueError, match="positions run from 1 to 12"):
            check_confirmation(KAT_PHRASE, {position: "legal"})
