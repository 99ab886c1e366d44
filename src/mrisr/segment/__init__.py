"""The SR-augmentation study (MIDL 2022, OHBM 2022): tissue segmentation trained on real vs real + SR images."""
