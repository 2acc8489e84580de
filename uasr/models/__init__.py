"""Emission models q(x | c): ``table`` (discrete units), ``gaussian`` (pooled features),
``hybrid`` (prior-normalised neural posteriors over segments); and ``ctc``, the supervised
frame-level CTC network of the baseline row."""
