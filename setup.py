"""Only the optional compiled part; everything else is in pyproject.toml.

`telephony_bridge.audio._polyphase` is the resampler's inner loops in C. It is optional, as
websockets' speedups are: without a C compiler the build warns and goes on, and the resampler runs
its numpy path, which gives the same bytes (tests/unit/test_resample_native.py holds them equal).
"""

import sys

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "telephony_bridge.audio._polyphase",
            ["telephony_bridge/audio/_polyphase.c"],
            optional=True,
            # -O3 for the vectorizer; no fast-math: the kernels are written so nothing reorders a sum.
            extra_compile_args=[] if sys.platform == "win32" else ["-O3"],
        )
    ]
)
