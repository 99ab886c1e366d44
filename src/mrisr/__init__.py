"""mrisr: reproducible GAN super-resolution benchmarks for 3D brain MRI."""

__version__ = "0.1.0"
