"""The channels the pipeline knows, by name."""

from __future__ import annotations

from tau3mu.channels.base import Channel
from tau3mu.errors import OptionError

__all__ = ["channel_names", "get_channel", "register"]

_CHANNELS: dict[str, Channel] = {}


def register(channel: Channel, *, replace: bool = False) -> Channel:
    """Make ``channel`` known by its name; returns it.

    Raises :class:`ValueError` when another channel has that name (unless ``replace``).
    """
    known = _CHANNELS.get(channel.name)
    if known is not None and known is not channel and not replace:
        raise ValueError(f"a channel named {channel.name!r} is registered already")
    _CHANNELS[channel.name] = channel
    return channel


def get_channel(name: str) -> Channel:
    """The registered channel ``name``.

    Raises :class:`~tau3mu.errors.OptionError` naming the known channels.
    """
    try:
        return _CHANNELS[name]
    except KeyError:
        known = ", ".join(sorted(_CHANNELS)) or "none"
        raise OptionError(f"unknown channel {name!r}; known channels: {known}") from None


def channel_names() -> list[str]:
    """The names of the registered channels, sorted."""
    return sorted(_CHANNELS)
