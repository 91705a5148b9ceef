"""Model specifications, the design of an analysis, the PyMC builders, the TOML analysis spec."""
