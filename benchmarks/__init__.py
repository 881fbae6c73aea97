"""Speed and memory measurements, each reported as a ratio against a baseline measured in the same run."""
