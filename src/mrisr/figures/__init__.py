"""Paper figures, one module per paper; shared styling in :mod:`mrisr.figures.style`."""
