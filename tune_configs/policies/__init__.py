"""Trained policies outside RLlib: the shipped format, loading, and acting in the simulator.

What belongs here: the shipped-policy format (safetensors weights + ``policy.json``, numpy actors,
:mod:`.shipped`), a single-cell policy loaded from a checkpoint or a shipped directory and its
deterministic evaluation (:mod:`.single`), and a pool policy replayed as a controller of the pool
simulator (:mod:`.pool`). Importing these modules needs numpy only; torch and Ray are imported
lazily, only to read an RLlib checkpoint. Building, training and exporting controllers happen
above (:mod:`tune_configs.controllers`, :mod:`tune_configs.export`).
"""
