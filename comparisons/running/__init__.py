"""Running implementations: trainers built from the registry, devices, the one timing harness, the study loop."""
