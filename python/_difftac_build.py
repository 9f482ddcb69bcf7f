"""In-tree PEP 517 backend: scikit-build-core, told which mujoco to build libdifftac.so against.

libdifftac.so must be built against the very mujoco it will be loaded into (difftac refuses a
mismatch at import). pip builds in an isolated environment, which would hide the target
environment's mujoco, so this backend asks the target interpreter (``sys.executable`` without the
isolation's ``PYTHONPATH``) where its ``mujoco`` package is, without importing it, and passes that
folder (``include/`` and ``libmujoco.so.X.Y.Z``) to CMake as ``MUJOCO_PYPI_DIR``. With
``--no-build-isolation`` the same lookup finds the same environment.

* mujoco installed in the target, in MUJOCO_RANGE: built against it (the normal case, and the fix
  after another package moved mujoco: ``pip install --force-reinstall --no-deps ./python``);
* installed but outside the range: an error (pip would otherwise move mujoco back to the range
  after building, and the library would not match it);
* not installed: ``mujoco`` in MUJOCO_RANGE becomes a build requirement and the library is built
  against that copy; pip then installs mujoco from the same range (usually the same version: the
  run-time check reports it if not). Install mujoco first to be sure.

``DIFFTAC_MUJOCO_DIR`` overrides the lookup. Editable installs (``pip install -e python``) build
nothing (pyproject.toml: the package then loads the repository's build/libdifftac.so).
"""
import json
import os
import subprocess
import sys



def __getattr__(name):
    # the other PEP 517 hooks (sdist, metadata, editable requirements) are scikit-build-core's,
    # imported when pip asks for them (so that this module imports without it, for the tests)
    if name.startswith(("build_", "get_requires_for_", "prepare_metadata_for_")):
        from scikit_build_core import build
        return getattr(build, name)
    raise AttributeError(name)


def _skb():
    from scikit_build_core import build
    return build

MUJOCO_RANGE = (">=4.0.0", "<4.1")      # keep in step with pyproject.toml's dependencies
_PROBE = ("import importlib.util as u, importlib.metadata as md, json, os\n"
          "s = u.find_spec('mujoco')\n"
          "print(json.dumps(None if s is None or not s.submodule_search_locations else "
          "[list(s.submodule_search_locations)[0], md.version('mujoco')]))\n")


def _in_range(version):
    from packaging.specifiers import SpecifierSet
    return version in SpecifierSet(",".join(MUJOCO_RANGE))


def _probe(isolated):
    env = dict(os.environ)
    if not isolated:  # the target environment: drop what pip's build isolation put on the path
        env.pop("PYTHONPATH", None)
        env.pop("PYTHONNOUSERSITE", None)
    r = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True)
    if r.returncode != 0:
        return None
    return json.loads(r.stdout.strip().splitlines()[-1])


def _target_mujoco():
    if os.environ.get("DIFFTAC_MUJOCO_DIR"):
        return [os.environ["DIFFTAC_MUJOCO_DIR"], None]
    return _probe(isolated=False)


def _check(found):
    path, version = found
    if version is not None and not _in_range(version):
        raise RuntimeError(
            f"difftac: the environment has mujoco {version} ({path}), outside the range difftac "
            f"is tested with (mujoco{','.join(MUJOCO_RANGE)}); install a mujoco in that range "
            f"first, or set DIFFTAC_MUJOCO_DIR to a mujoco package folder to build against it")
    return path


def _settings(config_settings, editable=False):
    cs = dict(config_settings or {})
    if editable or "cmake.define.MUJOCO_PYPI_DIR" in cs:
        return cs
    found = _target_mujoco()
    if found is None:
        found = _probe(isolated=True)  # the build requirement added below
        if found is None:
            raise RuntimeError("difftac: no mujoco package to build against; pip install "
                               f"'mujoco{','.join(MUJOCO_RANGE)}' first")
        print(f"difftac: no mujoco in the target environment; building against mujoco "
              f"{found[1]} from the build environment (install mujoco first to be sure)",
              file=sys.stderr)
    path = _check(found)
    print(f"difftac: building libdifftac.so against mujoco {found[1] or '?'} in {path}",
          file=sys.stderr)
    cs["cmake.define.MUJOCO_PYPI_DIR"] = path
    return cs


def get_requires_for_build_wheel(config_settings=None):
    req = list(_skb().get_requires_for_build_wheel(config_settings))
    if _target_mujoco() is None:
        req.append("mujoco" + ",".join(MUJOCO_RANGE))
    return req


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    return _skb().build_wheel(wheel_directory, _settings(config_settings), metadata_directory)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    return _skb().build_editable(wheel_directory, _settings(config_settings, editable=True),
                               metadata_directory)
