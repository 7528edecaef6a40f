"""The secret format of every credential and the keyed hash the database stores."""

from __future__ import annotations

import hashlib
import hmac
import re
import string
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gitward.credentials import codec

PREFIXES = ["gwpat_", "gwrep_", "gwprj_", "gwwsp_", "gwapp_", "gwoat_", "gwort_", "gwcsk_"]
ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase


def base62(number: int, width: int) -> str:
    out = ""
    while number:
        number, digit = divmod(number, 62)
        out = ALPHABET[digit] + out
    return out.rjust(width, "0")


@pytest.mark.parametrize("prefix", PREFIXES)
def test_format(prefix):
    secret = codec.generate(prefix)
    assert re.fullmatch(re.escape(prefix) + r"[0-9A-Za-z]{32}[0-9A-Za-z]{6}", secret)
    assert len(secret) == len(prefix) + 38
    body, check = secret[:-6], secret[-6:]
    assert check == base62(zlib.crc32(body.encode()), 6)
    assert codec.prefix_of(secret) == prefix
    assert codec.looks_like_secret(secret)


def test_random_part_differs():
    assert len({codec.generate("gwpat_") for _ in range(50)}) == 50


def test_checksum_of_known_text():
    text = "gwpat_" + "A" * 32
    assert codec.checksum(text) == base62(zlib.crc32(text.encode()), 6)
    assert codec.checksum("") == "000000"


@pytest.mark.parametrize("bad", ["gwpat", "gwPAT_", "gw_", "gwtoolong_", "pat_", "gwpa1_", ""])
def test_generate_refuses_bad_prefixes(bad):
    with pytest.raises(ValueError):
        codec.generate(bad)


def test_every_one_character_typo_is_rejected():
    secret = codec.generate("gwpat_")
    for i, original in enumerate(secret):
        for replacement in ("0", "z", "Q", "_", "a"):
            if replacement == original:
                continue
            typo = secret[:i] + replacement + secret[i + 1 :]
            assert codec.prefix_of(typo) is None, (i, typo)


@given(st.integers(min_value=0), st.integers(min_value=0, max_value=61))
def test_substitutions_in_the_random_part_are_rejected(seed, offset):
    secret = codec.generate("gwrep_")
    i = 6 + seed % 32
    replacement = ALPHABET[(ALPHABET.index(secret[i]) + 1 + offset % 61) % 62]
    assert replacement != secret[i]
    assert codec.prefix_of(secret[:i] + replacement + secret[i + 1 :]) is None


def test_truncated_extended_and_swapped_secrets_are_rejected():
    secret = codec.generate("gwapp_")
    assert codec.prefix_of(secret[:-1]) is None
    assert codec.prefix_of(secret + "0") is None
    assert codec.prefix_of(" " + secret) is None
    assert codec.prefix_of(secret + "\n") is None
    swapped = secret[:10] + secret[11] + secret[10] + secret[12:]
    if swapped != secret:
        assert codec.prefix_of(swapped) is None


@given(st.text(max_size=60))
def test_random_text_is_not_a_secret(text):
    # A random string passes only with a 1 in 62**6 chance; hypothesis will not find one.
    assert codec.prefix_of(text) is None or codec.checksum(text[:-6]) == text[-6:]


def test_keyed_hash_is_hmac_sha256_hex():
    key = b"k" * 32
    secret = codec.generate("gwpat_")
    expected = hmac.new(key, secret.encode(), hashlib.sha256).hexdigest()
    assert codec.keyed_hash(key, secret) == expected
    assert re.fullmatch(r"[0-9a-f]{64}", expected)
    assert codec.keyed_hash(b"other key" * 4, secret) != expected
    assert codec.keyed_hash(key, secret) != hashlib.sha256(secret.encode()).hexdigest()


@given(st.binary(max_size=200), st.text(max_size=80))
def test_the_prepared_keyed_hash_is_hmac_sha256(key, secret):
    # Keys longer than SHA-256's block (64 bytes) are hashed first, as RFC 2104 says.
    expected = hmac.new(key, secret.encode(), hashlib.sha256).hexdigest()
    prepared = codec.KeyedHash(key)
    assert prepared(secret) == expected
    assert prepared(secret) == expected  # the padded states are copied, never consumed


def test_constant_time_equal():
    assert codec.constant_time_equal("abc", "abc")
    assert not codec.constant_time_equal("abc", "abd")
    assert not codec.constant_time_equal("abc", "abcd")
