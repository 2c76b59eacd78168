"""The studio's screens: one per mode (dataset, train, generate, models), help and dialogs."""
