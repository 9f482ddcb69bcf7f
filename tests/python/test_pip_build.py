"""pip install ./python builds libdifftac.so against the mujoco of the environment it installs into
(python/pyproject.toml, python/_difftac_build.py: scikit-build-core over the repository's CMake).

The end-to-end install (a scratch venv, pip install mujoco, pip install ./python, a press) needs
PyPI and about a minute: it runs when DIFFTAC_TEST_PIP=1 (docs/python.md has the measured run)."""
import os
import pathlib
import re
import subprocess
import sys
import textwrap

import mujoco
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "python"))
import _difftac_build as backend  # noqa: E402  (imports without scikit-build-core)
from difftac import _lib  # noqa: E402


def test_dependency_range_is_the_backends_and_holds_the_running_mujoco():
    text = (ROOT / "python" / "pyproject.toml").read_text()
    dep = re.search(r'"mujoco([^"]+)"', text).group(1)
    assert dep == ",".join(backend.MUJOCO_RANGE)
    assert backend._in_range(mujoco.__version__)
    assert not backend._in_range("3.3.7") and not backend._in_range("4.1.0")
    # setup.sh's pin is inside the range
    pin = re.search(r"^MUJOCO_VERSION=(\S+)", (ROOT / "setup.sh").read_text(), re.M).group(1)
    assert backend._in_range(pin)


def test_backend_finds_the_target_environments_mujoco_without_importing_it():
    found = backend._probe(isolated=False)
    assert found is not None
    path, version = found
    assert version == mujoco.__version__
    assert pathlib.Path(path).resolve() == pathlib.Path(mujoco.__file__).resolve().parent
    assert (pathlib.Path(path) / "include" / "mujoco" / "mujoco.h").is_file()
    assert backend._check(found) == path
    with pytest.raises(RuntimeError, match=r"mujoco 3\.3\.7.*outside the range"):
        backend._check([path, "3.3.7"])
    cs = backend._settings({})
    assert cs["cmake.define.MUJOCO_PYPI_DIR"] == path
    assert backend._settings({}, editable=True) == {}


def test_editable_state_builds_nothing_and_the_wheel_only_the_library():
    text = (ROOT / "python" / "pyproject.toml").read_text()
    assert 'if.state = "editable"' in text and "wheel.cmake = false" in text
    assert 'build.targets = ["difftac"]' in text
    cm = (ROOT / "python" / "CMakeLists.txt").read_text()
    assert "install(TARGETS difftac LIBRARY DESTINATION difftac)" in cm


def test_mismatch_messages_say_how_to_rebuild():
    with pytest.raises(_lib.LibraryError, match=r"4\.0\.0.*4\.0\.1.*setup\.sh"):
        _lib.check_versions(4000000, 4000001, ROOT / "build" / "libdifftac.so")


@pytest.mark.skipif(os.environ.get("DIFFTAC_TEST_PIP") != "1",
                    reason="end-to-end pip install into a scratch venv: set DIFFTAC_TEST_PIP=1")
def test_pip_install_into_a_scratch_venv(tmp_path):
    venv = tmp_path / "v"
    py = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(py), "-m", "pip", "install", "-q", f"mujoco=={mujoco.__version__}",
                    "numpy"], check=True)
    env = dict(os.environ, CMAKE_ARGS="-DDTAC_CUDA=OFF -DDTAC_BUILD_TESTS=OFF",
               CMAKE_BUILD_PARALLEL_LEVEL="2")
    env.pop("DIFFTAC_LIB", None)
    subprocess.run([str(py), "-m", "pip", "install", "-q", str(ROOT / "python")], check=True,
                   env=env)
    code = textwrap.dedent(f"""
        import difftac, mujoco, os
        assert os.path.dirname(difftac.library_path()) == os.path.dirname(difftac.__file__)
        m = mujoco.MjModel.from_xml_path({str(ROOT / "models" / "press_small.xml")!r})
        d = mujoco.MjData(m)
        d.ctrl[:] = [0, -0.004]
        for _ in range(50):
            mujoco.mj_step(m, d)
        print(difftac.contact_wrench(m, d, "gel")[2])
    """)
    r = subprocess.run([str(py), "-c", code], capture_output=True, text=True, cwd=tmp_path,
                       env={k: v for k, v in os.environ.items() if k != "DIFFTAC_LIB"})
    assert r.returncode == 0, r.stderr[-2000:]
    assert float(r.stdout.strip().splitlines()[-1]) > 0.5
