"""Builds the convirt Python package: the pure-Python modules plus the ``convirt._C`` extension and
the ``libconvirt_*.so`` libraries it links, all compiled by the project's own CMake.

    /usr/bin/python3 -m venv --system-site-packages .venv     # Debian's torch stays visible
    .venv/bin/pip install --no-build-isolation .

The CMake build uses the installing interpreter (``CONVIRT_PYTHON=sys.executable``), so the
extension links the libtorch that ``import torch`` loads in that environment. The libraries are
placed inside the package next to ``_C`` and their run path is rewritten to ``$ORIGIN``, so the
installed package needs neither the build folder nor LD_LIBRARY_PATH.

Environment variables:
    CONVIRT_CMAKE_BUILD_DIR  reuse / keep this CMake build folder (default: build-pip/cmake-pyXY)
    CONVIRT_CMAKE_ARGS       extra CMake arguments, e.g. "-DCONVIRT_CUDA=OFF"
    CONVIRT_BUILD_JOBS       parallel compile jobs (default: the number of CPUs)
"""
import glob
import os
import re
import shlex
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))
# setuptools' own scratch (build/, *.egg-info) goes here rather than into the CMake build/ folder
# or the source tree; /build*/ is git-ignored.
SCRATCH = os.path.join(ROOT, "build-pip")


def project_version() -> str:
    with open(os.path.join(ROOT, "CMakeLists.txt"), encoding="utf-8") as f:
        match = re.search(r"project\(convirt\s+VERSION\s+([0-9.]+)", f.read())
    if not match:
        raise RuntimeError("setup.py: cannot find `project(convirt VERSION x.y.z)` in CMakeLists.txt")
    return match.group(1)


class CMakeExtension(Extension):
    def __init__(self, name: str) -> None:
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    """Configures and builds the ``convirt_python_ext`` target, then copies ``_C`` and its libraries."""

    def run(self) -> None:
        if shutil.which("cmake") is None:
            raise RuntimeError("building convirt needs CMake >= 3.25 on PATH")
        super().run()

    def build_extension(self, ext: Extension) -> None:
        build_dir = os.environ.get("CONVIRT_CMAKE_BUILD_DIR") or os.path.join(
            SCRATCH, f"cmake-py{sys.version_info[0]}{sys.version_info[1]}")
        build_dir = os.path.abspath(build_dir)
        os.makedirs(build_dir, exist_ok=True)
        args = [
            "cmake", "-S", ROOT, "-B", build_dir,
            "-DCMAKE_BUILD_TYPE=Release",
            f"-DCONVIRT_PYTHON={sys.executable}",
            "-DCONVIRT_BUILD_PYTHON=ON",
            "-DCONVIRT_BUILD_TESTS=OFF",
            "-DCONVIRT_BUILD_EXAMPLES=OFF",
            "-DCONVIRT_BUILD_BENCHMARKS=OFF",
        ]
        if shutil.which("ninja") and not os.path.exists(os.path.join(build_dir, "CMakeCache.txt")):
            args += ["-G", "Ninja"]
        args += shlex.split(os.environ.get("CONVIRT_CMAKE_ARGS", ""))
        jobs = os.environ.get("CONVIRT_BUILD_JOBS") or str(os.cpu_count() or 1)
        subprocess.check_call(args)
        subprocess.check_call(["cmake", "--build", build_dir, "--target", "convirt_python_ext",
                               "--parallel", jobs])

        out_dir = os.path.dirname(os.path.abspath(self.get_ext_fullpath(ext.name)))
        os.makedirs(out_dir, exist_ok=True)
        built = glob.glob(os.path.join(build_dir, "python", "convirt", "_C*.so"))
        if len(built) != 1:
            raise RuntimeError(f"expected one _C extension in {build_dir}/python/convirt, found {built}")
        copied = [self._copy(built[0], os.path.join(out_dir, os.path.basename(built[0])))]
        # One file per library, under the name the loader looks for (the SONAME, libconvirt_x.so.0).
        for lib in sorted(glob.glob(os.path.join(build_dir, "lib", "libconvirt_*.so.*"))):
            if os.path.islink(lib):
                soname = os.path.basename(lib)
                if soname.count(".so.") == 1 and soname.split(".so.")[1].isdigit():
                    copied.append(self._copy(os.path.realpath(lib), os.path.join(out_dir, soname)))
        script = os.path.join(build_dir, "convirt_set_rpath.cmake")
        with open(script, "w", encoding="utf-8") as f:
            for path in copied:
                f.write(f'file(RPATH_SET FILE "{path}" NEW_RPATH "$ORIGIN")\n')
        subprocess.check_call(["cmake", "-P", script])

    @staticmethod
    def _copy(src: str, dst: str) -> str:
        if os.path.exists(dst):
            os.remove(dst)
        shutil.copyfile(src, dst)
        shutil.copymode(src, dst)
        return dst


os.makedirs(SCRATCH, exist_ok=True)
setup(
    version=project_version(),
    packages=["convirt"],
    package_dir={"convirt": "bindings/python/convirt"},
    package_data={"convirt": ["py.typed", "*.pyi"]},
    ext_modules=[CMakeExtension("convirt._C")],
    cmdclass={"build_ext": CMakeBuild},
    zip_safe=False,
    options={"build": {"build_base": os.path.join(SCRATCH, "setuptools")},
             "egg_info": {"egg_base": SCRATCH}},
)
