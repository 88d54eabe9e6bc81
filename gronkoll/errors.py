"""Gronkoll's own exception tree; library errors are translated into these at the edge."""


class GronkollError(Exception):
    """Base of every error Gronkoll raises on purpose; its message is meant for the user."""


class ConfigError(GronkollError):
    """The configuration file is missing, unreadable or invalid."""


class StoreError(GronkollError):
    """A store could not be read or written."""


class StoreUnavailable(StoreError):
    """A store is locked, read-only, missing or unreachable."""


class StoreRejected(StoreError):
    """A store refused the data itself (malformed, too large): sending it again cannot help."""


class InputError(GronkollError):
    """A user-supplied input (a CSV file, a date, an option) is invalid."""


class UnknownDevice(InputError):
    """A reading or query names a device the configuration does not know."""


class DeviceError(GronkollError):
    """Talking to a device failed; the message names the device."""


class DeviceUnreachable(DeviceError):
    """A device did not answer."""


class SnmpAuthError(DeviceError):
    """A device refused our SNMP credentials (wrong user, key or protocol)."""


class NoSuchObject(DeviceError):
    """A device does not have an object (OID) we asked for."""


class SnmpError(DeviceError):
    """Any other SNMP failure: a malformed answer, an error status from the agent."""


class MalformedSnmpMessage(GronkollError):
    """An SNMP datagram is not a well-formed BER-encoded v1/v2c message."""


class AuthError(GronkollError):
    """An API key is missing, wrong or lacks the needed role."""
