"""The two options a /classify request may give, ``top`` and ``reject``, checked strictly.

Each may come from the query string, a multipart text field or a JSON key; the handler decides
which wins (the query string).
"""

import re

from chalicelib.errors import bad_request, shown

# ASCII digits only: int() would also take "２" or " 2_0".
_DIGITS = re.compile(r"[0-9]+")
# Any ``top`` above the label count means every label; this bound only keeps int() away from
# thousands of digits (Python refuses to convert more than 4300 of them).
_TOP_CAP = 10**9
# ``reject``'s spellings, case aside; anything else is refused (a typo must not flip the answer).
_REJECT = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def top_from(raw: object, where: str) -> int | None:
    """``top`` as sent (query string, multipart field or JSON): a whole number from 1 up in ASCII
    digits, however many of them; ``None`` when absent or empty. A number above the label count
    means every label (returned capped, never refused)."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, int) and not isinstance(raw, bool):
        if raw >= 1:
            return min(raw, _TOP_CAP)
    elif isinstance(raw, str) and _DIGITS.fullmatch(raw):
        significant = raw.lstrip("0")
        if significant:
            return _TOP_CAP if len(significant) > 9 else min(int(significant), _TOP_CAP)
    raise bad_request(
        "invalid_parameter",
        f"top {where} must be a whole number from 1 up, written with the digits 0-9 "
        f"(like top=2; any number above the label count means every label), got {shown(raw)}",
    )


def reject_from(raw: object, where: str) -> bool | None:
    """``reject`` as sent: true/false, 1/0 or yes/no in any case (a JSON boolean or 0/1 too);
    ``None`` when absent or empty (the default applies: rejection on)."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int) and raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str) and raw.lower() in _REJECT:
        return _REJECT[raw.lower()]
    raise bad_request(
        "invalid_parameter",
        f"reject {where} must be true or false (also 1/0 or yes/no; reject=false answers the "
        f"closest class even for an image the model finds none of its classes), got {shown(raw)}",
    )
