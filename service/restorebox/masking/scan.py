"""Which columns look personal: by name, and by a sample of their values.

Each detector answers for one value; a column is suspicious when its name says so, or
when enough of its sampled values are e-mail addresses, phone numbers, card numbers
(that pass Luhn), IBANs (that pass mod 97), IP addresses, personal names or JWTs."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence

from restorebox.masking.words import FIRST_NAMES, LAST_NAMES

_NAME_HINTS = re.compile(
    r"e_?mail|phone|mobile|^tel|fax|first_?name|last_?name|surname|full_?name|^name$|"
    r"given_?name|family_?name|address|street|^city$|zip|postal|postcode|birth|^dob$|"
    r"ssn|social_?sec|national_?id|passport|iban|card_?number|^card$|ip_?addr|^ip$|"
    r"tax_?id|licen[cs]e_?number",
    re.I,
)
_EMAIL = re.compile(r"^[\w.+'-]+@[\w-]+(\.[\w-]+)+$")
_PHONE = re.compile(r"^\+?[\d ()./-]{7,20}$")
_CARD = re.compile(r"^(?:\d[ -]?){13,19}$")
_IBAN = re.compile(r"^[A-Z]{2}\d{2}[A-Z0-9 ]{11,30}$")
_JWT = re.compile(r"^eyJ[\w-]+\.eyJ[\w-]+\.[\w-]*$")
_FIRST = {n.lower() for n in FIRST_NAMES}
_LAST = {n.lower() for n in LAST_NAMES}
SHARE = 0.3  # of the sampled values, for a column to be suspicious
MIN_HITS = 3


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def is_card(value: str) -> bool:
    if not _CARD.match(value):
        return False
    digits = re.sub(r"\D", "", value)
    return 13 <= len(digits) <= 19 and len(set(digits)) > 2 and _luhn(digits)


def is_iban(value: str) -> bool:
    compact = value.replace(" ", "").upper()
    if not _IBAN.match(compact):
        return False
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


def is_phone(value: str) -> bool:
    digits = sum(ch.isdigit() for ch in value)
    return bool(_PHONE.match(value)) and 7 <= digits <= 15 and not value.isdigit()


def is_ip(value: str) -> bool:
    if not re.match(r"^[\d.:a-fA-F]{3,45}(/\d+)?$", value):
        return False
    try:
        ipaddress.ip_interface(value)
    except ValueError:
        return False
    return True


def is_person(value: str) -> bool:
    words = value.replace(",", " ").split()
    if not 1 <= len(words) <= 4 or not all(w[:1].isupper() for w in words):
        return False
    lowered = [w.lower() for w in words]
    return any(w in _FIRST for w in lowered) and (
        len(words) == 1 or any(w in _LAST for w in lowered)
    )


DETECTORS: dict[str, Callable[[str], bool]] = {
    "e-mail addresses": lambda v: bool(_EMAIL.match(v)),
    "card numbers": is_card,
    "IBANs": is_iban,
    "JWTs": lambda v: bool(_JWT.match(v)),
    "IP addresses": is_ip,
    "phone numbers": is_phone,
    "personal names": is_person,
}


def reasons_for(column: str, values: Sequence[str]) -> list[str]:
    """Why a column looks personal (empty: it does not)."""
    reasons = []
    if _NAME_HINTS.search(column):
        reasons.append("its name")
    values = [v.strip() for v in values if v and v.strip()]
    for label, detect in DETECTORS.items():
        hits = sum(1 for v in values if detect(v))
        if hits >= min(MIN_HITS, len(values)) and hits >= SHARE * len(values) and hits:
            reasons.append(f"{hits} of {len(values)} sampled values are {label}")
            break
    return reasons
