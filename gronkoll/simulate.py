"""Simulated readings for ``gronkoll demo``: PCs, meeting rooms and a server room, day by day.

Every device reports each quarter hour (UTC), on a grid of local days, so a DST day has 92
or 100 readings per device. PCs and meeting rooms report ``state``; PDUs and UPSes ``power_w``;
a facility meter ``energy_wh_total`` (the server room's IT load times a PUE, with one meter
swap that restarts the counter from zero) and a heat meter ``heat_wh_total`` (heat recovered
from the IT load). Everything follows from one ``random.Random``, drawn in a fixed order.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import repeat

from gronkoll.fields import STATE_CODES
from gronkoll.ingest import Reading
from gronkoll.school_days import SLOT_MS, Day
from gronkoll.settings import Settings

SLOT_H = SLOT_MS / 3_600_000
ON, IDLE, SLEEP, OFF = (float(STATE_CODES[s]) for s in ("on", "idle", "sleep", "off"))
STUDENT, STAFF, OFFICE = "student", "staff", "office"
# Local wall-clock pauses (minutes of the day, [start, end)) when a PC in use sits idle.
SCHOOL_PAUSES = ((585, 600), (705, 750), (840, 855))
LUNCH = ((705, 750),)
# Nightly share of PCs left on, per site kind; a school's share varies from night to night.
NIGHT_SHARE = {"school": (0.30, 0.45), "office": (0.15, 0.30)}
# Per role: usual start and end (local quarter hours: 30 is 07:30), chance of use on an open
# day, share of working quarter hours active (else idle), weight on the nightly share left
# on, and the share of PCs whose power management sends them to sleep after 30 idle minutes.
HABITS = {
    STUDENT: ((29, 33), (59, 64), (0.6, 0.95), (0.5, 0.9), (0.4, 1.6), 0.15),
    STAFF: ((28, 32), (63, 69), (0.85, 0.97), (0.55, 0.8), (0.6, 1.8), 0.3),
    OFFICE: ((28, 32), (63, 69), (0.8, 0.95), (0.55, 0.8), (0.6, 1.8), 0.3),
}
CLOSED_DAY_OFF = 0.25  # chance a PC left on is switched off on a closed day (updates, rounds)
METER_START_WH = 612_345_670.0  # the facility meter's reading at the start
HEAT_START_WH = 183_420_000.0


@dataclass(slots=True)
class Pc:
    """One PC's habits; ``carry`` is its state over the night into the next day."""

    id: str
    site: str
    role: str
    phase_ms: int
    start_q: int  # usual start, local quarter hour
    end_q: int
    use_p: float  # chance it is used on an open day
    on_p: float  # chance a working quarter hour is active rather than idle
    leave_w: float  # propensity to be left on, times the site's nightly share
    power_managed: bool  # sleeps after 30 idle minutes
    carry: float = OFF


@dataclass(slots=True)
class Room:
    """A meeting room's booking rate and its state outside office hours."""

    id: str
    school: bool
    phase_ms: int
    book_p: float
    night: float


class Simulation:
    """Generates one day of readings at a time for the configured devices."""

    def __init__(self, settings: Settings, rng: random.Random) -> None:
        self.rng = rng
        kinds = {s.id: s.kind for s in settings.sites}
        self.pcs: list[Pc] = []
        self.rooms: list[Room] = []
        self.server: dict[str, dict[str, list[str]]] = {}  # site -> kind -> PDUs, UPSes, meters
        self.base_w: dict[str, float] = {}
        for dev in settings.devices:
            phase = rng.randrange(60) * 1000
            if dev.kind == "pc":
                school = kinds[dev.site] == "school"
                role = (STUDENT if dev.group == "elevdatorer" else STAFF) if school else OFFICE
                self.pcs.append(Pc(dev.id, dev.site, role, phase, *self._habits(role)))
            elif dev.kind == "meeting_room":
                night = OFF if rng.random() < 0.5 else SLEEP
                school = kinds[dev.site] == "school"
                self.rooms.append(Room(dev.id, school, phase, rng.uniform(0.2, 0.45), night))
            elif dev.kind in ("pdu", "ups", "meter", "heat_meter"):
                self.server.setdefault(dev.site, {}).setdefault(dev.kind, []).append(dev.id)
                if dev.kind == "pdu":
                    self.base_w[dev.id] = rng.uniform(2_600, 3_400)
        self.counter_wh = {
            dev: HEAT_START_WH if kind == "heat_meter" else METER_START_WH
            for devices in self.server.values()
            for kind, ids in devices.items()
            for dev in ids
        }
        self.night_base = {
            site: rng.uniform(*NIGHT_SHARE.get(kind, NIGHT_SHARE["office"]))
            for site, kind in kinds.items()
        }
        for pc in self.pcs:  # the night before the first day
            if rng.random() < self.night_base[pc.site] * pc.leave_w:
                pc.carry = SLEEP if pc.power_managed else IDLE
        self.swap: tuple[date, int] | None = None  # (day, slot) of the facility meter swap

    def _habits(self, role: str) -> tuple[int, int, float, float, float, bool]:
        rng = self.rng
        start, end, use, on, leave, managed = HABITS[role]
        return (
            rng.randint(*start),
            rng.randint(*end),
            rng.uniform(*use),
            rng.uniform(*on),
            rng.uniform(*leave),
            rng.random() < managed,
        )

    def plan_meter_swap(self, first: date, days: int) -> None:
        """Swap the facility meters mid-period, at about ten in the morning."""
        self.swap = (first + timedelta(days=days // 2), 40 + self.rng.randrange(8))

    def day(self, day: Day) -> list[Reading]:
        """Every reading of one local day, grouped by device."""
        out: list[Reading] = []
        shifted: dict[int, list[int]] = {}

        def times(phase: int) -> list[int]:
            ts = shifted.get(phase)
            if ts is None:
                ts = shifted[phase] = [t + phase for t in day.times]
            return ts

        self._server_rooms(day, out)
        pauses = {
            STUDENT: day.flags(SCHOOL_PAUSES),
            STAFF: day.flags(LUNCH),
            OFFICE: day.flags(LUNCH),
        }
        gauss = self.rng.gauss
        shares = {
            site: min(0.5, max(0.1, base + gauss(0, 0.04)))
            for site, base in self.night_base.items()
        }
        for pc in self.pcs:
            states = self._pc_states(pc, day, pauses[pc.role], shares[pc.site])
            out.extend(zip(repeat(pc.id), repeat("state"), times(pc.phase_ms), states))
        for room in self.rooms:
            states = self._room_states(room, day)
            out.extend(zip(repeat(room.id), repeat("state"), times(room.phase_ms), states))
        return out

    def _pc_states(self, pc: Pc, day: Day, pauses: list[bool], share: float) -> list[float]:
        rnd, n = self.rng.random, len(day.times)
        is_open = day.office_open if pc.role == OFFICE else day.school_open
        use_p = pc.use_p if is_open else (0.15 if pc.role == STAFF and day.office_open else 0.0)
        carry = pc.carry
        if rnd() >= use_p:
            if not is_open and carry != OFF and rnd() < CLOSED_DAY_OFF:
                pc.carry = carry = OFF
            return [carry] * n
        first_slot, on_p = day.first_slot, pc.on_p
        a = first_slot[pc.start_q + int(rnd() * 4) - 1]  # a quarter hour early to two late
        b = first_slot[pc.end_q + int(rnd() * 4) - 2]
        states = [carry] * a
        states += [IDLE if pauses[k] or rnd() >= on_p else ON for k in range(a, b)]
        left_on = rnd() < share * pc.leave_w
        states += [IDLE if left_on else OFF] * (n - b)
        if pc.power_managed:
            run = 0
            for k, s in enumerate(states):
                run = run + 1 if s == IDLE else 0
                if run > 2:
                    states[k] = SLEEP
        pc.carry = OFF if not left_on else SLEEP if pc.power_managed else IDLE
        return states

    def _room_states(self, room: Room, day: Day) -> list[float]:
        n, rnd = len(day.times), self.rng.random
        states = [room.night] * n
        if not day.office_open:
            return states
        book_p = room.book_p if day.school_open or not room.school else room.book_p * 0.2
        k, stop = day.first_slot[32], day.first_slot[68]  # bookable 08:00-17:00
        states[k:stop] = [SLEEP] * (stop - k)
        while k < stop:
            if rnd() < book_p:
                length = (2, 3, 4, 4, 6, 8)[int(rnd() * 6)]
                end = min(k + length, stop)
                states[k:end] = [ON] * (end - k)
                if end < n:
                    states[end] = IDLE  # the screen stays up a while after the meeting
                k = end + 1
            else:
                k += 2
        return states

    def _server_rooms(self, day: Day, out: list[Reading]) -> None:
        gauss, n, times = self.rng.gauss, len(day.times), day.times
        busy = [day.office_open and 480 <= m < 1020 for m in day.minutes]
        warm = [0.03 if 720 <= m < 1080 else 0.0 for m in day.minutes]  # afternoon cooling
        swap_slot = self.swap[1] if self.swap and self.swap[0] == day.day else None
        for devices in self.server.values():
            it_w = [0.0] * n
            for pdu in devices.get("pdu", []):
                base = self.base_w[pdu]
                watts = [
                    round(base * (1.04 if b else 1.0) * (1 + gauss(0, 0.012)), 1) for b in busy
                ]
                it_w = [a + b for a, b in zip(it_w, watts, strict=True)]
                out.extend(zip(repeat(pdu), repeat("power_w"), times, watts))
            for ups in devices.get("ups", []):
                losses = [round(90 + 0.025 * w + gauss(0, 5), 1) for w in it_w]
                out.extend(zip(repeat(ups), repeat("power_w"), times, losses))
            pue = 1.42 + 0.10 * day.summer
            for meter in devices.get("meter", []):
                facility = [w * (pue + warm[k] + gauss(0, 0.01)) for k, w in enumerate(it_w)]
                self._counter(meter, "energy_wh_total", times, facility, 10.0, swap_slot, out)
            share = 0.65 - 0.4 * day.summer  # less of the heat is wanted in summer
            for meter in devices.get("heat_meter", []):
                heat = [w * share * (1 + gauss(0, 0.02)) for w in it_w]
                self._counter(meter, "heat_wh_total", times, heat, 100.0, None, out)

    def _counter(
        self,
        meter: str,
        fld: str,
        times: list[int],
        watts: list[float],
        resolution_wh: float,
        swap_slot: int | None,
        out: list[Reading],
    ) -> None:
        """Readings of a cumulative meter: its register at each slot, then the slot's energy."""
        total = self.counter_wh[meter]
        values = []
        for k, w in enumerate(watts):
            values.append(math.floor(total / resolution_wh) * resolution_wh)
            if k == swap_slot:  # a new meter, from zero, seven minutes into the slot
                total = w * SLOT_H * 8 / 15
            else:
                total += w * SLOT_H
        self.counter_wh[meter] = total
        out.extend(zip(repeat(meter), repeat(fld), times, values))
