"""Parsing quantities such as `46 t`, `2,000 m` or `1,000 hp` into a canonical unit with pint."""
from __future__ import annotations

import json
import re
from contextlib import contextmanager
from pathlib import Path
from decimal import Decimal, ROUND_HALF_EVEN
from functools import lru_cache

_DECIMAL_COMMA = re.compile(r"^\s*-?\d+,(\d{1,2}|\d{4,})(?!\d)")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
# A number, then at most a unit made of words joined by spaces or `/` (`46 t`, `70 km/h`). Only this
# reaches pint, whose parser does arithmetic: `9**9**9 t` would never finish.
_QUANTITY = re.compile(r"^\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d{1,4})?)\s*"
                       r"([^\W\d]+(?:(?:\s*/\s*|\s+)[^\W\d]+)*)?\s*$")
_INTEGER = re.compile(r"^[-+]?[0-9]+$")  # pint reads these as int, any other number as float
LARGEST = Decimal(10) ** 15  # the loader refuses numbers this large too (kb/loader.py MAX_NUMBER)


def _split(text: str) -> tuple[str, str | None] | None:
    """(number, unit or None) of a quantity as written, or None if it is not one. Over 64 characters it is
    not one either: pint takes seconds over a long unit name, and recurses on a long `a/b/c/…`."""
    parts = _QUANTITY.match(_THOUSANDS.sub("", text.strip())) if len(text) <= 64 else None
    return parts.groups() if parts else None


_CACHE_VERSION = "4"  # bump when conversion rules change (2: XSD 1.1 canonical decimals, `46`;
#                       3: a number and a unit only, no arithmetic, below 10^15; 4: `046 t` is 46 t, not 0)


class QuantityError(ValueError):
    """A quantity that cannot be read; `hint` says how to write it."""

    def __init__(self, message: str, hint: str | None = None, code: str = "bad-unit"):
        super().__init__(message)
        self.hint = hint
        self.code = code


@lru_cache(maxsize=1)
def _registry():
    import pint  # imported lazily: pint takes a while to load

    return pint.UnitRegistry(autoconvert_offset_to_baseunit=True)


def canonical_decimal(value: float | Decimal) -> Decimal:
    """Round to at most 3 decimal places, in the XSD 1.1 canonical form (`46`, `42.5`, `745.7`): the form
    Oxigraph and other SPARQL stores return, so the graph reads the same whichever engine answers."""
    d = Decimal(str(value)).quantize(Decimal("0.001"), rounding=ROUND_HALF_EVEN).normalize()
    if d == d.to_integral_value():
        d = d.quantize(Decimal("1"))
    return d


_memo: dict[str, str] = {}  # "text\x1funit" -> canonical decimal, shared with .kb-cache/quantities.json


@contextmanager
def quantity_cache(cache_dir: Path):
    """Reuse conversions from earlier runs, so that a run that meets no new quantity never loads pint."""
    path = cache_dir / "quantities.json"
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        if stored.get("version") == _CACHE_VERSION:
            _memo.update(stored["values"])
    except (OSError, ValueError, KeyError, AttributeError):
        pass  # no cache, or an unreadable one: start afresh
    known = len(_memo)
    try:
        yield
    finally:
        if len(_memo) != known:
            try:
                from .files import write_atomically
                write_atomically(path, json.dumps({"version": _CACHE_VERSION, "values": _memo}, sort_keys=True))
            except OSError:
                pass  # a read-only root still works, only slower


def learned(since: int = 0) -> list[tuple[str, str]]:
    """The conversions memoised after the first `since` (a forked worker hands back what it learned)."""
    return list(_memo.items())[since:]


def learn(conversions: list[tuple[str, str]]) -> None:
    _memo.update(conversions)


def convert(text: str, unit: str) -> Decimal:
    """`text` (a number with a unit) in `unit`, memoised across runs. Raises QuantityError."""
    key = f"{text}\x1f{unit}"
    if key in _memo:
        return Decimal(_memo[key])
    value = _convert(text, unit)
    _memo[key] = str(value)
    return value


@lru_cache(maxsize=65536)
def _convert(text: str, unit: str) -> Decimal:
    """`text` (a number with a unit) in `unit`. Raises QuantityError naming the problem."""
    if _DECIMAL_COMMA.match(text):
        fixed = text.replace(",", ".", 1)
        raise QuantityError(f"`{text}` uses a decimal comma", f"write `{fixed}`", "decimal-comma")
    parts = _split(text)
    if parts is None:
        raise QuantityError(f"`{text}` is not a number with a unit", f"write a number and a unit, e.g. `12 {unit}`")
    number, unit_text = parts
    integer = _INTEGER.match(number)
    if integer:
        number = str(int(number))  # pint reads `046` as 0 (Python allows no leading zero): as 46
    if unit_text is None:
        value = Decimal(number)
    elif unit_text == unit and number.isascii():  # in the unit asked for: what pint gives, without pint (0.3 s)
        value = Decimal(number) if integer else Decimal(str(float(number)))
    else:
        import pint

        ureg = _registry()
        try:
            quantity = ureg.Quantity(f"{number} {unit_text}")
        except (pint.errors.UndefinedUnitError, pint.errors.DefinitionSyntaxError, ValueError,
                AttributeError, TypeError, SyntaxError, AssertionError, KeyError, IndexError) as e:
            name = getattr(e, "unit_names", None)
            what = f"unknown unit `{name[0] if isinstance(name, (list, tuple)) and name else unit_text}`" if name else "not a number with a unit"
            raise QuantityError(f"`{text}` is {what}", f"write a number and a unit, e.g. `12 {unit}`")
        if not isinstance(quantity, ureg.Quantity):
            raise QuantityError(f"`{text}` is not a number with a unit", f"write e.g. `12 {unit}`")
        target = ureg.Unit(unit)
        if quantity.dimensionless and not target.dimensionless:
            value = Decimal(str(quantity.magnitude))
        else:
            try:
                value = Decimal(str(quantity.to(target).magnitude))
            except pint.errors.DimensionalityError:
                raise QuantityError(f"`{text}` is {_dimension_name(quantity.dimensionality)}, not {_dimension_name(target.dimensionality)}",
                                    f"give it in {unit} or a unit convertible to it", "wrong-dimension")
    if not value.is_finite():
        raise QuantityError(f"`{text}` is not a finite number", f"write a number and a unit, e.g. `12 {unit}`")
    if abs(value) >= LARGEST:
        raise QuantityError(f"`{text}` is too large a number", "check the value and its unit", "out-of-range")
    return canonical_decimal(value)


@lru_cache(maxsize=4096)
def stated_form(text: str, value: Decimal, unit: str) -> str | None:
    """`text` as the entry states it (`340 hp`, spaces tidied) when it is in another unit than `unit` and its
    number is not `value`, the quantity in that canonical unit: the graph keeps it beside the converted value
    (kb:statedValue), so that a page shows what the source says and not only a figure of false precision
    (253.538 kW)."""
    parts = _split(text)
    if parts is None or parts[1] is None or parts[1] == unit or Decimal(parts[0]) == value:
        return None
    return " ".join(text.split())


def stated_places(stated: str, value: Decimal) -> int:
    """The decimals to show of `value`, converted from `stated`: as many significant digits as the stated
    number has (at least two; a whole number's trailing zeros are not counted, so `1,200 hp` is 895 kW, not
    894.8), never fewer than its whole units, at most the 3 decimals the graph keeps."""
    number = (_split(stated) or ("0", None))[0].lstrip("+-").split("e")[0].split("E")[0]
    digits = number.replace(".", "").lstrip("0") if "." in number else number.lstrip("0").rstrip("0")
    return min(3, max(0, max(2, len(digits)) - 1 - value.adjusted())) if value else 0


def with_stated(stated: str, value: Decimal, unit: str) -> str:
    """`340 hp (254 kW)`, as reference works print a converted figure: the stated figure, then `value` (in
    `unit`) to its precision (`stated_places`). A pint unit name's underscores read as spaces (`short ton`)."""
    shown = round(value, stated_places(stated, value)).normalize()
    stated = stated.replace("_", " ")
    return f"{stated} ({shown:f} {unit})" if unit else f"{stated} ({shown:f})"


def dimension_of(text: str) -> str | None:
    """The dimension of `text` if it carries a unit, e.g. 'a length' for `3 km`; None for a bare number."""
    parts = _split(text)
    if parts is None or parts[1] is None:
        return None
    try:
        quantity = _registry().Quantity(f"{parts[0]} {parts[1]}")
    except Exception:  # noqa: BLE001 - anything unparseable simply has no dimension to report
        return None
    if not hasattr(quantity, "dimensionality") or quantity.dimensionless:
        return None
    return _dimension_name(quantity.dimensionality)


_DIMENSIONS = {
    "[length]": "a length", "[mass]": "a mass", "[time]": "a time",
    "[length] / [time]": "a speed", "[length] ** 2 * [mass] / [time] ** 3": "a power",
    "dimensionless": "a plain number",
}


def _dimension_name(dimensionality) -> str:
    text = str(dimensionality)
    return _DIMENSIONS.get(text, f"of dimension {text}")
