"""The ingestion path every reading takes: energy engine, then store, then saved state."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from gronkoll.devices import attributions, energy_models
from gronkoll.energy import Batch, EnergyEngine
from gronkoll.errors import GronkollError
from gronkoll.settings import Settings
from gronkoll.statedb import StateDB
from gronkoll.stores.base import TimeSeriesStore

log = logging.getLogger(__name__)

Reading = tuple[str, str, int, float]


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What one ingest call did."""

    stored: int
    intervals: int
    events: int
    duplicates: int
    unknown: int
    energy_wh: float
    repeats: int = 0  # readings dropped as repeats (ingest with drop_repeats)


class Ingestor:
    """Feeds readings through the energy engine into the store, saving integration state.

    The state is saved after every batch by default. With ``save_every_s``, it is saved at
    most that often (and by flush(), at shutdown): after a crash, `_restore` resumes each
    series from the store's newest readings, which the store keeps per series as the engine
    left them. What those cannot rebuild (a counter drop held until the next reading tells
    glitch from reset, the first reading of a device's energy source) is still saved after
    the batch that changed it.
    """

    def __init__(
        self,
        settings: Settings,
        store: TimeSeriesStore,
        state: StateDB,
        *,
        save_every_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.store = store
        self.state = state
        self.save_every_s = save_every_s
        self._clock = clock
        self._saved_at = clock()
        self.engine = EnergyEngine(
            energy_models(settings),
            max_gap_s=settings.energy.max_gap_s,
            series_id=store.series_id,
        )
        self.attribution = attributions(settings)
        self._restore()

    def _restore(self) -> None:
        """Load saved integration state; where the store holds newer readings, resume from them."""
        saved = self.state.load_integration_states()
        for device, state in saved.items():
            if device in self.engine.models:
                self.engine.import_state(device, state)
        stale = []
        for (device, field), t in self.store.last_times().items():
            if device not in self.engine.models:
                continue
            known = self.engine.last_time(device, field)
            if known is None or known < t:
                stale.append((device, field))
        if stale:
            # The store committed a batch whose state was not saved (the process stopped in
            # between): resume each such series from its newest stored reading.
            log.warning("resuming %d series from the store's newest readings", len(stale))
            for field in {f for _, f in stale}:
                latest = self.store.latest(field)
                for device, f in stale:
                    if f == field and device in latest:
                        t, value = latest[device]
                        self.engine.resume_series(device, field, t, value)

    def set_counter_modulus(self, device: str, modulus_wh: float | None) -> None:
        """Where the device's energy counter wraps, in Wh, as its profile declares it.

        A width in the device's config (counter_bits) wins; without either, a drop is a reset.
        """
        model = self.engine.models.get(device)
        config = self.settings.device(device)
        if model is None or config is None or config.counter_bits is not None:
            return
        if model.counter_modulus_wh != modulus_wh:
            self.engine.models[device] = replace(model, counter_modulus_wh=modulus_wh)

    def ingest(self, readings: Iterable[Reading], *, drop_repeats: bool = False) -> IngestResult:
        """Process and store readings (device, field, time ms, value); returns counts.

        With ``drop_repeats``, readings not newer than the newest processed for their series
        are dropped and counted as repeats (EnergyEngine.process); a batch of nothing else
        stores nothing.
        """
        try:
            batch = self.engine.process(readings, drop_repeats=drop_repeats)
        except GronkollError:  # the store could not number a new series
            self.engine.rollback()
            raise
        if drop_repeats and not batch.rows and not batch.unknown:
            return IngestResult(0, 0, 0, 0, 0, 0.0, repeats=batch.repeats)
        result = self.commit(batch)
        return replace(result, repeats=batch.repeats) if batch.repeats else result

    def commit(self, batch: Batch) -> IngestResult:
        """Store a processed batch, then save the state of the devices it touched when due."""
        try:
            written = self.store.write(batch, self.attribution)
        except GronkollError:
            # Nothing was stored: undo the batch in the engine so the same readings can be
            # sent again.
            self.engine.rollback()
            raise
        self.engine.settle()
        if self._clock() - self._saved_at >= self.save_every_s:
            self.flush()
        elif self.engine.must_save:
            self._save(self.engine.must_save & self.engine.dirty)
        self.engine.must_save.clear()
        return IngestResult(
            stored=written.readings,
            intervals=written.intervals,
            events=written.events,
            duplicates=batch.duplicates,
            unknown=len(batch.unknown),
            energy_wh=batch.energy_wh,
        )

    def flush(self) -> None:
        """Save the integration state of every device processed since the last save."""
        self._save(set(self.engine.dirty))
        self._saved_at = self._clock()

    def _save(self, devices: set[str]) -> None:
        if devices:
            # Pairs, not a dict: each state is encoded as soon as it is exported (see there).
            export = self.engine.export_state
            self.state.save_integration_states((d, export(d)) for d in devices)
            self.engine.dirty -= devices
