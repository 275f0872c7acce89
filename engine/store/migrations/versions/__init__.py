"""Migration scripts, one per schema revision, named ``NNNN_<what>.py``."""
