"""One place that opens what a command needs (stores, state database, ingestion) and closes it."""

from __future__ import annotations

import logging
from types import TracebackType

from gronkoll.carbon import Factors, factors
from gronkoll.errors import GronkollError
from gronkoll.ingest import Ingestor
from gronkoll.settings import Settings
from gronkoll.statedb import StateDB
from gronkoll.stores import open_store
from gronkoll.stores.base import TimeSeriesStore

log = logging.getLogger(__name__)


class Runtime:
    """The opened parts of Gronkoll for one process; each part is opened on first use."""

    def __init__(
        self, settings: Settings, *, state_save_s: float = 0.0, migrate_state: bool = True
    ) -> None:
        """state_save_s: save integration state at most this often (0: after every batch).

        migrate_state False: the state database was migrated by another process of this run
        (the collector, for its commit worker), so Alembic is not even imported here.
        """
        self.settings = settings
        self.state_save_s = state_save_s
        self.migrate_state = migrate_state
        self._store: TimeSeriesStore | None = None
        self._state: StateDB | None = None
        self._ingestor: Ingestor | None = None
        self._factors: Factors | None = None

    @property
    def store(self) -> TimeSeriesStore:
        """The time-series store."""
        if self._store is None:
            self._store = open_store(self.settings)
        return self._store

    @property
    def state(self) -> StateDB:
        """The state database, migrated to the newest schema."""
        if self._state is None:
            self._state = StateDB(self.settings.state_url, migrate_schema=self.migrate_state)
        return self._state

    @property
    def ingestor(self) -> Ingestor:
        """The ingestion path, with integration state restored."""
        if self._ingestor is None:
            self._ingestor = Ingestor(
                self.settings, self.store, self.state, save_every_s=self.state_save_s
            )
        return self._ingestor

    @property
    def factors(self) -> Factors:
        """Emission factors, with the hourly series loaded once."""
        if self._factors is None:
            self._factors = factors(self.settings)
        return self._factors

    def close(self) -> None:
        """Save what the ingestion has not saved yet, then close every part that was opened."""
        if self._ingestor is not None:
            try:
                self._ingestor.flush()
            except GronkollError as err:  # the store has the readings: a restart resumes
                log.warning("could not save the integration state at exit: %s", err)
        if self._store is not None:
            self._store.close()
            self._store = None
        if self._state is not None:
            self._state.close()
            self._state = None
        self._ingestor = None

    def __enter__(self) -> Runtime:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
