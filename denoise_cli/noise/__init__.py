"""Every noise model in one place: synthetic noise for benchmarks, the camera pipeline, its prior and calibration."""
