"""The ingestion path every reading takes: energy engine, then store, then saved state."""

from __future__ import annotations

import logging
from collections.abc import Iterable
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


class Ingestor:
    """Feeds readings through the energy engine into the store, saving integration state."""

    def __init__(self, settings: Settings, store: TimeSeriesStore, state: StateDB) -> None:
        self.settings = settings
        self.store = store
        self.state = state
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

    def ingest(self, readings: Iterable[Reading]) -> IngestResult:
        """Process and store readings (device, field, time ms, value); returns counts."""
        batch = self.engine.process(readings)
        return self.commit(batch)

    def commit(self, batch: Batch) -> IngestResult:
        """Store a processed batch, then save the state of the devices it touched."""
        dirty = self.engine.dirty
        try:
            written = self.store.write(batch, self.attribution)
        except GronkollError:
            # Nothing was stored: put the touched devices back to their last saved state so
            # the same readings can be sent again.
            saved = self.state.load_integration_states()
            for device in dirty:
                self.engine.forget(device)
                if device in saved:
                    self.engine.import_state(device, saved[device])
            dirty.clear()
            raise
        self.state.save_integration_states({d: self.engine.export_state(d) for d in dirty})
        dirty.clear()
        return IngestResult(
            stored=written.readings,
            intervals=written.intervals,
            events=written.events,
            duplicates=batch.duplicates,
            unknown=len(batch.unknown),
            energy_wh=batch.energy_wh,
        )
