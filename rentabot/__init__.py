"""rentabot: exclusive, time-limited locks on shared resources for CI pipelines and people."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("rentabot")
except PackageNotFoundError:  # Running from a source tree that was never installed.
    __version__ = "0+unknown"
