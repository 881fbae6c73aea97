"""Neural-network modules: trunks, heads, multi-task models, factorised layers."""
