"""The package's error family: every failure a user can act on is a :class:`DenoiseError` with a one-line message.

The CLI maps each class to an exit code in one place (``cli._common.exit_code``); library users catch ``DenoiseError``.
"""

from __future__ import annotations


class DenoiseError(Exception):
    """Base class: a problem with the user's input, settings, files or machine; the message is one line."""


class ImageError(DenoiseError):
    """An image that cannot be read or written."""


class OutputExistsError(ImageError):
    """An output file that exists already and may not be replaced."""


class ImageTooLargeError(ImageError):
    """An image over the size limit (the decompression-bomb guard)."""


class WeightsError(DenoiseError):
    """Weights that cannot be found, fetched or trusted (registry, Hub, sha256)."""


class WeightsUnavailableError(WeightsError):
    """Weights that are on the Hub but out of reach (no network, or offline mode) and not in the cache."""


class CorruptWeightsError(WeightsError):
    """A registry file whose sha256 is not the one recorded: damaged or tampered with."""


class CheckpointError(DenoiseError):
    """A weights file that is missing, corrupt, or not a model this package can build."""


class DeviceError(DenoiseError):
    """A device or precision that this machine cannot provide."""


class ConfigError(DenoiseError, ValueError):
    """Settings that cannot work together (a budget of zero, an unknown noise spec, a run that does not exist)."""


class NoiseSpecError(ConfigError):
    """A noise spec string that cannot be parsed."""


class ModelOutputError(DenoiseError):
    """The network produced values that are not finite numbers (corrupt weights, overflow in low precision)."""


class UploadError(DenoiseError):
    """An upload that the Hub refused or that could not reach (the export itself is done)."""
