"""solat_chaos: the SOLAT execution core and a property-based chaos checker for it."""

__version__ = "0.1.0"
