"""Payload formats as data: each format's decoder, registered by the name the config uses.

Built-in formats are entered here the way another one would be; the pipeline looks a
mapping's `format` up in FORMATS and never imports a decoder module by its path.
"""

from __future__ import annotations

from gronkoll.collector.formats.base import Decoded, Decoder, Input
from gronkoll.collector.formats.generic_json import GenericJson
from gronkoll.collector.formats.gronkoll_agent import GronkollAgent
from gronkoll.collector.formats.gronkoll_meeting import GronkollMeeting
from gronkoll.collector.formats.number import Number
from gronkoll.collector.formats.shelly_gen1 import ShellyGen1
from gronkoll.collector.formats.shelly_gen2 import ShellyGen2
from gronkoll.collector.formats.tasmota import Tasmota
from gronkoll.collector.formats.zigbee2mqtt import Zigbee2Mqtt

#: Decoders are stateless (a device's state is passed in), so one of each serves every device.
FORMATS: dict[str, Decoder] = {
    d.name: d
    for d in (
        Tasmota(),
        ShellyGen1(),
        ShellyGen2(),
        Zigbee2Mqtt(),
        GenericJson(),
        Number(),
        GronkollAgent(),
        GronkollMeeting(),
    )
}

__all__ = ["FORMATS", "Decoded", "Decoder", "Input"]
