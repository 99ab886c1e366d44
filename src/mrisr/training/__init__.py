"""GAN training: losses, schedules and the one loop every variant uses."""
