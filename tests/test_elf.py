"""bundler.elf reads the symbol versions a compiled file requires, as binutils' readelf does."""

import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from bundler.elf import ElfError, elf_files_in_tree, highest, parse_version, read_elf
from bundler.runtime import GLIBC, deploy_target


@pytest.fixture(scope="module")
def runtime() -> Path:
    """The deploy runtime's packages (scripts/setup-deploy fetches them)."""
    return deploy_target().ensure_packages()


def _readelf(path: Path) -> tuple[set[str], tuple[str, ...]]:
    out = subprocess.run(["readelf", "-V", "-d", str(path)], capture_output=True, text=True).stdout
    needs = out.split("Version needs section")[-1] if "Version needs section" in out else ""
    versions = set(re.findall(r"Name: (\S+)\s+Flags", needs))
    return versions, tuple(re.findall(r"\(NEEDED\)\s+Shared library: \[(.*?)\]", out))


@pytest.mark.skipif(shutil.which("readelf") is None, reason="binutils' readelf is not installed")
def test_agrees_with_readelf_on_every_runtime_library(runtime: Path) -> None:
    files = list(elf_files_in_tree(runtime))
    assert len(files) > 20
    for name, info in files:
        assert _readelf(runtime / name) == (set(info.versions), info.needed), name


def test_reads_the_running_interpreter() -> None:
    info = read_elf(Path(sys.executable).resolve().read_bytes())
    assert "libc.so.6" in info.needed or info.highest("GLIBC") is not None
    assert info.highest("GLIBC") >= (2, 2)


def test_falls_back_to_the_dynamic_segment_without_section_headers(runtime: Path) -> None:
    name, info = next((n, i) for n, i in elf_files_in_tree(runtime) if i.versions)
    data = bytearray((runtime / name).read_bytes())
    assert data[4] == 2  # 64-bit: e_shoff at 0x28, e_shnum at 0x3C
    struct.pack_into("<Q", data, 0x28, 0)
    struct.pack_into("<H", data, 0x3C, 0)
    stripped = read_elf(bytes(data))
    assert stripped.versions == info.versions
    assert stripped.needed == info.needed


def test_highest_compares_versions_numerically(runtime: Path) -> None:
    files = list(elf_files_in_tree(runtime))
    version, where = highest(files, "GLIBC")
    assert version <= GLIBC and where
    assert parse_version("GLIBC_2.9") < parse_version("GLIBC_2.17")
    assert parse_version("GLIBCXX_3.4.19") == ("GLIBCXX", (3, 4, 19))


@pytest.mark.parametrize(
    "data", [b"", b"\x7fELF", b"MZ" + bytes(100), b"\x7fELF\x03\x01" + bytes(60)]
)
def test_rejects_what_is_not_elf(data: bytes) -> None:
    with pytest.raises(ElfError):
        read_elf(data)


def test_reads_the_cpu_every_runtime_library_was_built_for(runtime: Path) -> None:
    machines = {info.machine for _, info in elf_files_in_tree(runtime)}
    assert machines == {deploy_target().machine}
    arm = deploy_target("arm64").ensure_packages()
    assert {info.machine for _, info in elf_files_in_tree(arm)} == {"aarch64"}


@pytest.mark.parametrize(
    ("code", "name"), [(0x3E, "x86_64"), (0xB7, "aarch64"), (0x1234, "e_machine 0x1234")]
)
def test_machine_comes_from_the_header(code: int, name: str) -> None:
    data = bytearray(Path(sys.executable).resolve().read_bytes())
    struct.pack_into("<H", data, 0x12, code)
    assert read_elf(bytes(data)).machine == name
