"""The device model: what the engine and the stores need to know about each configured device."""

from __future__ import annotations

from gronkoll.energy import DeviceModel
from gronkoll.fields import STATES
from gronkoll.settings import Device, Settings
from gronkoll.stores.base import UNGROUPED, Attribution


def energy_model(settings: Settings, device: Device) -> DeviceModel:
    """The engine's view of a device: plausible maximum power, counter width, state powers."""
    profile = settings.power_profile(device)
    state_w = tuple(profile.watts(s) if profile else None for s in STATES)
    max_w = settings.rated_power_w(device) * (1 + settings.energy.plausibility_margin)
    modulus = float(2**device.counter_bits) if device.counter_bits else None
    return DeviceModel(max_power_w=max_w, counter_modulus_wh=modulus, state_w=state_w)


def energy_models(settings: Settings) -> dict[str, DeviceModel]:
    """Engine models of every configured device."""
    return {d.id: energy_model(settings, d) for d in settings.devices}


def attributions(settings: Settings) -> dict[str, Attribution]:
    """The site, group and kind each device's energy is rolled up under."""
    return {
        d.id: Attribution(
            site=None if d.metered_by else d.site, group=d.group or UNGROUPED, kind=d.kind
        )
        for d in settings.devices
    }
