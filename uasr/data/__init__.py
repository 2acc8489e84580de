"""Corpus builders, features, segments and units (lhotse manifests everywhere)."""
