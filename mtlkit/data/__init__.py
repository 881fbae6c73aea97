"""Real dataset readers, multi-task views and batching."""
