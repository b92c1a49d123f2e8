"""Video and frame-folder I/O, degradations (BI, BD, RealBasicVSR) and training datasets."""
