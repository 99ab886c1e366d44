"""The train stage: GAN training of one variant (:func:`mrisr.train.gan.train_variant`), its losses and schedules."""
