"""Background workers for prefloop."""
