"""Build hook: a non-editable install (pip install ./python) copies libdifftac.so into the package,
from $DIFFTAC_LIB or ../build/libdifftac.so, and then marks the wheel platform-specific. An editable
install (pip install -e python) copies nothing: the package finds the repository's build/."""
import os
import pathlib
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = pathlib.Path(__file__).resolve().parent


def _library():
    env = os.environ.get("DIFFTAC_LIB")
    path = pathlib.Path(env) if env else HERE.parent / os.environ.get("DTAC_BUILD_DIR", "build") / "libdifftac.so"
    return path if path.is_file() else None


class BuildPy(build_py):
    def run(self):
        super().run()
        lib = _library()
        if getattr(self, "editable_mode", False) or lib is None:
            return
        dest = pathlib.Path(self.build_lib) / "difftac" / "libdifftac.so"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(lib, dest)
        print(f"difftac: shipping {lib} as {dest}")


class BinaryDistribution(Distribution):
    def has_ext_modules(self):
        return _library() is not None


setup(cmdclass={"build_py": BuildPy}, distclass=BinaryDistribution)
