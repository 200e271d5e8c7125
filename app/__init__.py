"""prefloop: the RLHF loop as one self-hosted product."""

__version__ = "0.1.0"
