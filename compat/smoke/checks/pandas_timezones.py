"""pandas with the time-zone libraries it hands its time-zone work to: dateutil,
pytz and the standard library's zoneinfo (its data from the system or tzdata).

The zones come from the libraries themselves (a spread of what each enumerates,
plus zones with unusual rules), and go through pandas' parsing, localisation,
conversion and resampling, given as strings and as the library's objects; every
offset pandas computes is compared with the one the library itself gives for the
same instant. Written for pandas 1.5 to 3.x.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable
from typing import Any

from . import Skip, check, mod

# DST in both hemispheres, a half-hour shift, a half-hour offset, no DST at all
UNUSUAL = (
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "America/Sao_Paulo",
    "Pacific/Chatham",
)
SPREAD = 8  # zones taken evenly from each library's list
UTC = datetime.timezone.utc
# every 31 hours of a leap year: each hour of the day, on both sides of every switch
INSTANTS = [
    datetime.datetime(2024, 1, 1, tzinfo=UTC) + datetime.timedelta(hours=31 * i) for i in range(284)
]
LOCAL_NOONS = [datetime.datetime(2024, month, 15, 12) for month in range(1, 13)]


def _zones(names: Iterable[str]) -> list[str]:
    """The unusual zones the library has, and a spread of the rest."""
    every = sorted(n for n in names if "/" in n and not n.startswith(("Etc/", "SystemV/")))
    if not every:
        raise Skip("the library lists no time zones here (no time-zone data)")
    step = max(1, len(every) // SPREAD)
    return [z for z in UNUSUAL if z in every] + [z for z in every[::step] if z not in UNUSUAL]


def _exercise(
    zone: Any,
    tzinfo: Any,
    local_offset: Callable[[datetime.datetime], datetime.timedelta | None],
) -> None:
    """One zone through pandas, ``zone`` as pandas is given it (a string or an
    object), ``tzinfo`` the library's own object, ``local_offset`` the library's
    offset of a wall-clock time there."""
    pd = mod("pandas")
    label = f"time zone {zone!r}"
    utc = pd.DatetimeIndex(INSTANTS)
    here = utc.tz_convert(zone)
    expected = [t.astimezone(tzinfo).utcoffset() for t in INSTANTS]
    got = [t.utcoffset() for t in here]
    assert got == expected, f"{label}: pandas' offsets differ from the library's"
    assert (here.tz_convert("UTC") == utc).all(), f"{label}: a round trip through it moved"

    noons = pd.DatetimeIndex(LOCAL_NOONS).tz_localize(zone)
    assert [t.utcoffset() for t in noons] == [local_offset(t) for t in LOCAL_NOONS], label
    stamp = pd.Timestamp("2024-07-15 12:00", tz=zone)
    assert stamp.utcoffset() == local_offset(LOCAL_NOONS[6]), label
    parsed = pd.to_datetime(["2024-07-15T12:00:00+00:00"], utc=True).tz_convert(zone)
    assert parsed[0] == pd.Timestamp("2024-07-15 12:00", tz="UTC"), label

    # hourly across both DST switches: every local day holds all its hours
    hours = pd.date_range("2024-03-01", "2024-11-30", freq="h", tz="UTC").tz_convert(zone)
    days = pd.Series(1, index=hours).resample("D").sum()
    assert int(days.sum()) == len(hours), label
    assert (days.index.hour == 0).all(), f"{label}: resampled days do not start at midnight"
    assert set(days.iloc[1:-1].unique()) <= {23, 24, 25, 23.5, 24.5}, label
    local = pd.date_range("2024-03-01", periods=24 * 60, freq="h")
    shifted = local.tz_localize(zone, ambiguous="NaT", nonexistent="shift_forward")
    assert len(shifted) == len(local), label
    kept = shifted.dropna()  # the ambiguous hours
    instants = [t.to_pydatetime() for t in kept.tz_convert("UTC")]
    assert [t.utcoffset() for t in kept] == [t.astimezone(tzinfo).utcoffset() for t in instants], (
        f"{label}: localised wall times disagree with the library"
    )


def _wall(tzinfo: Any) -> Callable[[datetime.datetime], datetime.timedelta | None]:
    return lambda naive: naive.replace(tzinfo=tzinfo).utcoffset()


def _localized(zone: Any) -> Callable[[datetime.datetime], datetime.timedelta | None]:
    """pytz's offset of a wall time: its zones must localize, not replace."""

    def offset(naive: datetime.datetime) -> datetime.timedelta | None:
        result: datetime.timedelta | None = zone.localize(naive).utcoffset()
        return result

    return offset


@check("pandas", "python-dateutil", valid={"pandas": ">=1.5"})
def check_dateutil_time_zones() -> None:
    """dateutil zones (``dateutil/<zone>`` strings and tz objects) through pandas."""
    tz = mod("dateutil.tz")
    try:
        names: Iterable[str] = mod("dateutil.zoneinfo").get_zonefile_instance().zones
    except (ImportError, AttributeError):
        names = mod("zoneinfo").available_timezones()
    for i, name in enumerate(_zones(names)):
        tzinfo = tz.gettz(name)
        if tzinfo is None:
            continue  # not in the data dateutil reads here
        _exercise(tzinfo, tzinfo, _wall(tzinfo))
        if i < 2:  # pandas' own spelling, parsed by pandas
            _exercise(f"dateutil/{name}", tzinfo, _wall(tzinfo))


@check("pandas", "pytz", valid={"pandas": ">=1.5"})
def check_pytz_time_zones() -> None:
    """pytz zones (objects, and the names pandas resolves with pytz) through pandas."""
    pytz = mod("pytz")
    for name in _zones(pytz.common_timezones):
        zone = pytz.timezone(name)
        _exercise(zone, zone, _localized(zone))


@check("pandas", valid={"pandas": ">=2.0"})
def check_zoneinfo_time_zones() -> None:
    """The standard library's zoneinfo zones (tzdata's, where installed) through pandas."""
    zoneinfo = mod("zoneinfo")
    for name in _zones(zoneinfo.available_timezones()):
        zone = zoneinfo.ZoneInfo(name)
        _exercise(zone, zone, _wall(zone))
