"""isolog: host tools for radioisotope shipment loggers."""

__version__ = "0.1.0"
