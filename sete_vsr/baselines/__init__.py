"""CNN baselines (bicubic, BasicVSR, BasicVSR++, RealBasicVSR, EDVR) and official checkpoint loading."""
