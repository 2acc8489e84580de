"""Emission models q(x | c): ``table`` (discrete units), ``gaussian`` (pooled features)."""
