"""Datasets: the embedded demo, preparation of HR volumes, training patches."""
