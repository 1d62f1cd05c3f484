"""Build hook for the compiled per-event path (mmbot/marketdata/_speedups.pyx, issue 31).

Everything else lives in pyproject.toml. The extension is optional: without Cython or a
working C compiler the build warns and installs the pure-Python package, which gives
identical results (docs/performance.md). ``MMBOT_NO_COMPILE=1`` skips it on purpose.
"""

from __future__ import annotations

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    """build_ext that never fails the install: a compiler error leaves the fallback in place."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # no compiler (DistutilsPlatformError), a broken toolchain...
            self._skip(exc)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            self._skip(exc)

    @staticmethod
    def _skip(exc: Exception) -> None:
        print(f"mmbot: the compiled per-event path was not built ({exc}); the pure-Python path is used", file=sys.stderr)


def _extensions() -> list[Extension]:
    if os.environ.get("MMBOT_NO_COMPILE"):
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        print("mmbot: Cython is not installed; the pure-Python per-event path is used", file=sys.stderr)
        return []
    ext = Extension("mmbot.marketdata._speedups", ["mmbot/marketdata/_speedups.pyx"], extra_compile_args=["-O2"])
    try:
        return list(cythonize([ext], language_level=3, quiet=True))
    except Exception as exc:
        print(f"mmbot: Cython could not translate the per-event path ({exc}); the pure-Python path is used", file=sys.stderr)
        return []


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
