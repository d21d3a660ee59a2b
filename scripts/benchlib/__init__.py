"""The benchmark's child side for the torch baseline (:mod:`scripts.benchlib.torch_side`); ours runs
in the bundle's own interpreter through ``bundler/probe.py``."""
