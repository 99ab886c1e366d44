"""The segment stage: the SR-augmentation study (MIDL 2022, OHBM 2022), tissue segmentation trained on real vs
real + SR images, one arm and seed per training (:mod:`.train`), scored on the real test images (:mod:`.evaluate`)."""
