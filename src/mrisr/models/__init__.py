"""Networks, one per file, built by name through :mod:`mrisr.models.registry`."""
