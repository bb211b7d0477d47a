"""The visc version, recorded in every compiled artifact."""

__version__ = "0.1.0"
