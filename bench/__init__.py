"""Benchmarks: the audio core (`bench/audio.py`) and the load benchmark (`python -m bench.load`)."""
