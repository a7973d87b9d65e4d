"""claimlens: photo-evidence verification for auto-insurance claims."""

__version__ = "0.1.0"
