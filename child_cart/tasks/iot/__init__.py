"""IoT security tasks' shared parts: telemetry rows, synthetic traffic and weather, CSV loaders, metrics, models."""
