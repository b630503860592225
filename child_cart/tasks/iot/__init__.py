"""IoT security tasks' shared parts: telemetry rows, CSV loaders, metrics, models (the generators are in child_cart.synth)."""
