"""The time zone a phone number is in, when its number tells one alone, and the country it is
of. Pure, no I/O.

A lead states no time zone of its own on most forms; its number often tells it: +994…
Asia/Baku, +7 495… Europe/Moscow, +7 7172… Asia/Almaty. A number of a country with several
zones (a Russian mobile, +7 9…; a Kazakh mobile, +7 70…, which phonenumbers's data still
files under all of +7's) tells none, and the playbooks' `timezone` is used."""

from typing import Any

import phonenumbers
from phonenumbers import timezone as number_zones


def zone_of_phone(phone: Any) -> str | None:
    """The IANA zone of an E.164 number when exactly one is known for it, else None."""
    if not isinstance(phone, str) or not phone.startswith("+"):
        return None
    try:
        number = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return None
    zones = number_zones.time_zones_for_number(number)
    return zones[0] if len(zones) == 1 and zones[0] != number_zones.UNKNOWN_TIMEZONE else None


def phone_country(phone: Any) -> str | None:
    """The ISO code of the country an E.164 number is of (+7 701… KZ, +7 916… RU), or None."""
    if not isinstance(phone, str) or not phone.startswith("+"):
        return None
    try:
        region = phonenumbers.region_code_for_number(phonenumbers.parse(phone, None))
    except phonenumbers.NumberParseException:
        return None
    return region if region and region != "ZZ" else None
