"""Exceptions with messages meant for the user.

Every failure a user can cause (a bad path, a corrupt checkpoint, an unreadable image, an
over-long prompt, a bad option) raises a `JanusError` subclass whose message says what is wrong
and what to do; the CLI prints it on one line and the HTTP server turns it into a 4xx answer.
"""


class JanusError(Exception):
    """Base class of the errors a user can act on."""


class ConfigError(JanusError):
    """A config.json that cannot describe a model."""


class CheckpointError(JanusError):
    """A checkpoint that is missing, unreadable, corrupt or does not match the config."""


class ModelNotFoundError(CheckpointError):
    """Neither a local folder nor a hub id that can be fetched or found in the cache."""


class InputError(JanusError):
    """A request the model cannot serve: bad image, over-long prompt, bad option value."""
