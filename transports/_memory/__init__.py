"""The in-memory transport's private modules; the public names live in ``transports.memory``."""
