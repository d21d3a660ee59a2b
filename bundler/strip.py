"""Remove from vendored runtime packages what the Lambda function never loads.

Every rule names why it is safe. What stays is what ``import numpy``, ``import onnxruntime`` and
decoding JPEG/PNG/WebP/GIF/BMP/TIFF with Pillow load: the build itself runs exactly that, and a
request through the handler, in an isolated interpreter on the stripped folder
(:mod:`bundler.verify`), so a rule that removes too much fails the build rather than a deployment.
Licence files and ``*.dist-info`` stay (the licences travel with the binaries).

Compiled files then lose their symbol tables and debug sections (binutils' ``strip
--strip-unneeded``: what the dynamic loader uses stays): Pillow's wheels ship full DWARF,
``_imaging`` alone 1.0 -> 0.3 MiB zipped.
"""

import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bundler.elf import elf_files_in_tree


@dataclass(frozen=True)
class Rule:
    pattern: str  # a Path.glob pattern relative to the vendor folder
    why: str


RULES: tuple[Rule, ...] = (
    # Everywhere
    Rule("**/__pycache__", "bytecode of whoever installed them; the build compiles its own"),
    Rule("**/tests", "test suites"),
    Rule("**/*.pyi", "type stubs"),
    Rule("**/*.pxd", "Cython declarations, for building extensions against numpy"),
    Rule("**/*.h", "C headers, for building extensions"),
    Rule("**/*.a", "static libraries (numpy's npymath, npyrandom), for building extensions"),
    Rule("bin", "console scripts (f2py, onnxruntime_test); nothing on Lambda runs them"),
    # numpy 1.x (numpy/core) and 2.x (numpy/_core)
    Rule("numpy/f2py", "Fortran wrapper generator"),
    Rule("numpy/distutils", "build tooling"),
    Rule("numpy/_pyinstaller", "PyInstaller hook"),
    Rule("numpy/typing", "static typing helpers, imported only by type checkers"),
    # numpy 2 imports these on first attribute access only, and the function never touches them
    # (the build's own run would fail if it did): 1.8 MiB zipped, random alone 1.2.
    Rule("numpy/random", "random sampling; nothing in the function draws random numbers"),
    Rule("numpy/fft", "Fourier transforms"),
    Rule("numpy/polynomial", "polynomial classes"),
    Rule("numpy/ma", "masked arrays"),
    Rule("numpy/array_api", "experimental array API namespace, imported only on request"),
    Rule("numpy/*core/include", "C headers"),
    Rule("numpy/*core/lib/npy-pkg-config", "pkg-config files for building extensions"),
    Rule("numpy/*core/_simd.*.so", "SIMD test module (3.5 MB), imported only by numpy's tests"),
    # _multiarray_tests stays: numpy 1.26's core/_add_newdocs.py imports it.
    Rule("numpy/*core/_[!m]*_tests.*.so", "C test modules for numpy's own suite"),
    # onnxruntime: the Python package's tools, not the inference session
    Rule("onnxruntime/tools", "model conversion and optimisation scripts"),
    Rule("onnxruntime/quantization", "offline quantisation tooling (the trainer quantises)"),
    Rule("onnxruntime/transformers", "transformer graph optimisers"),
    Rule("onnxruntime/datasets", "sample models"),
    # Pillow: codecs and features the decoder never uses (shared/decode.py allows
    # JPEG/MPO, PNG, WebP, GIF, BMP, TIFF only; it draws no text and shows no windows)
    Rule("PIL/_avif.*.so", "AVIF codec; AVIF uploads are refused anyway"),
    Rule("pillow.libs/libavif-*", "AVIF codec library (7.6 MB), only _avif loads it"),
    Rule("PIL/_imagingft.*.so", "FreeType text rendering"),
    Rule("pillow.libs/libfreetype-*", "only _imagingft loads it"),
    Rule("pillow.libs/libharfbuzz-*", "only _imagingft loads it"),
    Rule("pillow.libs/libbrotli*", "only FreeType loads it (WOFF2 fonts)"),
    Rule(
        "pillow.libs/libpng16-*", "only FreeType loads it; Pillow's PNG codec is its own zlib code"
    ),
    Rule("PIL/_imagingtk.*.so", "Tk display support"),
)

# onnxruntime >= 1.2x wheels also carry the C API library next to the Python module, which links
# the runtime statically and never loads it. Removed only when no remaining file lists it as NEEDED.
UNREFERENCED_LIBRARIES: tuple[str, ...] = ("onnxruntime/capi/libonnxruntime.so*",)


@dataclass(frozen=True)
class Removed:
    path: str  # relative to the vendor folder
    size: int  # bytes on disk
    why: str


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def _bundled_needs(root: Path) -> tuple[set[str], dict[str, set[str]]]:
    """Names of all files under ``root`` and, per ELF file, the libraries it needs."""
    names = {p.name for p in root.rglob("*") if p.is_file()}
    needs = {name: set(info.needed) for name, info in elf_files_in_tree(root)}
    return names, needs


def strip(vendor: Path, rules: Iterable[Rule] = RULES) -> list[Removed]:
    """Apply ``rules`` to ``vendor`` in place and return what went, largest first.

    Afterwards every library that some remaining compiled file needs and that the packages
    bundled must still be there; otherwise a rule removed a live dependency and this raises.
    """
    bundled_before, _ = _bundled_needs(vendor)
    removed: list[Removed] = []
    for rule in rules:
        for path in sorted(vendor.glob(rule.pattern)):
            if path.exists():
                removed.append(Removed(path.relative_to(vendor).as_posix(), _size(path), rule.why))
                _remove(path)
    bundled_after, needs = _bundled_needs(vendor)
    referenced = set().union(*needs.values())
    for pattern in UNREFERENCED_LIBRARIES:
        for path in sorted(vendor.glob(pattern)):
            if path.name not in referenced:
                why = "duplicate of what the Python extension links in; nothing loads it"
                removed.append(Removed(path.relative_to(vendor).as_posix(), _size(path), why))
                _remove(path)
    broken = {
        f"{name} needs {lib}"
        for name, libs in needs.items()
        for lib in libs
        if lib in bundled_before and lib not in bundled_after
    }
    if broken:
        raise RuntimeError("stripping removed libraries still needed: " + "; ".join(sorted(broken)))
    return sorted(removed, key=lambda r: r.size, reverse=True)


STRIPPED_WHY = "symbol tables and debug sections (strip --strip-unneeded)"


def strip_binaries(vendor: Path, tool: str) -> list[Removed]:
    """Strip every ELF file under ``vendor`` in place with binutils' ``tool``; what each lost."""
    removed = []
    for name, _ in list(elf_files_in_tree(vendor)):
        path = vendor / name
        before = path.stat().st_size
        subprocess.run([tool, "--strip-unneeded", str(path)], check=True, capture_output=True)
        if before > path.stat().st_size:
            removed.append(Removed(name, before - path.stat().st_size, STRIPPED_WHY))
    return removed
