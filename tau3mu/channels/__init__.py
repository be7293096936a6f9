"""Channels: a decay's processor, selection configuration, histograms and fit, as one
object the pipeline takes by name (:func:`get_channel`).

Adding a channel means writing its processor and configuration and calling
:func:`register` with a :class:`Channel`; the pipeline is not edited.
"""

from __future__ import annotations

from tau3mu.channels.base import Channel, ProcessorFactory, SelectionReport
from tau3mu.channels.dsphipi import DSPHIPI
from tau3mu.channels.registry import channel_names, get_channel, register

__all__ = [
    "DSPHIPI",
    "Channel",
    "ProcessorFactory",
    "SelectionReport",
    "channel_names",
    "get_channel",
    "register",
]

register(DSPHIPI)
