"""Which symbol versions (``GLIBC_2.17``, ``GLIBCXX_3.4.19``, ...) an ELF file requires.

A shared object built against a newer glibc than the Lambda runtime's fails at import time with
``version `GLIBC_2.xx' not found``; the versions it needs are listed in its ``.gnu.version_r``
(``SHT_GNU_verneed``) section. This is a small pure-Python reader so the check runs wherever
Python does (binutils' ``readelf`` is not on every machine), straight from bytes in a zip.
When section headers are stripped it falls back to the dynamic segment (``DT_VERNEED``).
It also reads the CPU a file was built for (``e_machine``): an x86-64 library in an arm64 bundle
only fails once Lambda loads it.
"""

import re
import struct
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ELF_MAGIC = b"\x7fELF"
_SHT_GNU_VERNEED = 0x6FFFFFFE
_PT_LOAD, _PT_DYNAMIC = 1, 2
_DT_NULL, _DT_NEEDED, _DT_STRTAB = 0, 1, 5
_DT_VERNEED, _DT_VERNEEDNUM = 0x6FFFFFFE, 0x6FFFFFFF
# e_machine values (the ELF specification's registry) -> the names wheels and `uname -m` use.
MACHINES = {0x3E: "x86_64", 0xB7: "aarch64", 0x03: "i386", 0x28: "arm"}
_VERSION = re.compile(r"^([A-Z_]+?)_(\d+(?:\.\d+)*)$")


class ElfError(ValueError):
    """The bytes are not an ELF file this reader understands."""


@dataclass(frozen=True)
class ElfInfo:
    """What one ELF file needs from the system: libraries (``DT_NEEDED``) and symbol versions."""

    needed: tuple[str, ...]
    versions: frozenset[str]  # e.g. {"GLIBC_2.14", "GLIBCXX_3.4.19", "CXXABI_1.3"}
    machine: str = ""  # "x86_64", "aarch64", ... or "e_machine 0x..." for others

    def highest(self, prefix: str) -> tuple[int, ...] | None:
        """The highest required version with this prefix (``"GLIBC"`` -> ``(2, 17)``), if any."""
        found = [v for p, v in map(parse_version, self.versions) if p == prefix]
        return max(found, default=None)


def parse_version(name: str) -> tuple[str, tuple[int, ...]]:
    """``"GLIBC_2.17"`` -> ``("GLIBC", (2, 17))``; names without a number get an empty tuple."""
    match = _VERSION.match(name)
    if not match:
        return name, ()
    return match.group(1), tuple(int(part) for part in match.group(2).split("."))


def format_version(version: tuple[int, ...] | None) -> str:
    return "-" if version is None else ".".join(map(str, version))


@dataclass
class _Reader:
    """Field access for one ELF file's class (32/64-bit) and byte order."""

    data: bytes
    is64: bool = field(init=False)
    endian: str = field(init=False)

    def __post_init__(self) -> None:
        if self.data[:4] != ELF_MAGIC or len(self.data) < 52:
            raise ElfError("not an ELF file")
        if self.data[4] not in (1, 2) or self.data[5] not in (1, 2):
            raise ElfError("unknown ELF class or byte order")
        self.is64 = self.data[4] == 2
        self.endian = "<" if self.data[5] == 1 else ">"

    def machine(self) -> str:
        code = self.unpack("H", 0x12)[0]
        return MACHINES.get(code, f"e_machine {code:#x}")

    def unpack(self, fmt: str, offset: int) -> tuple[int, ...]:
        try:
            return struct.unpack_from(self.endian + fmt, self.data, offset)
        except struct.error as exc:
            raise ElfError(f"truncated ELF file at offset {offset}") from exc

    def cstring(self, offset: int) -> str:
        end = self.data.find(b"\0", offset)
        if offset >= len(self.data) or end < 0:
            raise ElfError(f"string table offset {offset} out of range")
        return self.data[offset:end].decode("ascii", "replace")

    # --- headers -------------------------------------------------------------------------
    def sections(self) -> list[tuple[int, int, int, int]]:
        """(type, offset, size, link) of every section header."""
        if self.is64:
            shoff, shentsize, shnum = self.unpack("Q", 0x28)[0], *self.unpack("HH", 0x3A)
        else:
            shoff, shentsize, shnum = self.unpack("I", 0x20)[0], *self.unpack("HH", 0x2E)
        if shoff == 0 or shnum == 0:
            return []
        layout = "IIQQQQII" if self.is64 else "IIIIIIII"
        result = []
        for index in range(shnum):
            _, stype, _, _, offset, size, link, _ = self.unpack(layout, shoff + index * shentsize)
            result.append((stype, offset, size, link))
        return result

    def segments(self) -> list[tuple[int, int, int, int]]:
        """(type, file offset, virtual address, file size) of every program header."""
        if self.is64:
            phoff, phentsize, phnum = self.unpack("Q", 0x20)[0], *self.unpack("HH", 0x36)
        else:
            phoff, phentsize, phnum = self.unpack("I", 0x1C)[0], *self.unpack("HH", 0x2A)
        result = []
        for index in range(phnum):
            at = phoff + index * phentsize
            if self.is64:
                ptype, _, offset, vaddr, _, filesz, _, _ = self.unpack("IIQQQQQQ", at)
            else:
                ptype, offset, vaddr, _, filesz, _, _, _ = self.unpack("IIIIIIII", at)
            result.append((ptype, offset, vaddr, filesz))
        return result

    def dynamic(self) -> list[tuple[int, int]]:
        """(tag, value) entries of the dynamic segment, up to DT_NULL."""
        for ptype, offset, _, filesz in self.segments():
            if ptype != _PT_DYNAMIC:
                continue
            fmt, step = ("qQ", 16) if self.is64 else ("iI", 8)
            entries = []
            for at in range(offset, offset + filesz, step):
                tag, value = self.unpack(fmt, at)
                if tag == _DT_NULL:
                    break
                entries.append((tag, value))
            return entries
        return []

    def file_offset(self, vaddr: int) -> int:
        """Map a virtual address (what dynamic entries hold) to an offset in the file."""
        for ptype, offset, start, filesz in self.segments():
            if ptype == _PT_LOAD and start <= vaddr < start + filesz:
                return offset + vaddr - start
        raise ElfError(f"address {vaddr:#x} is outside every loaded segment")

    # --- version needs -------------------------------------------------------------------
    def verneed_names(self, offset: int, count: int | None, strtab: int) -> set[str]:
        """Walk the Verneed/Vernaux chains starting at ``offset`` (names in ``strtab``)."""
        names: set[str] = set()
        seen = 0
        while count is None or seen < count:
            _, cnt, _, aux, nxt = self.unpack("HHIII", offset)
            aux_at = offset + aux
            for _ in range(cnt):
                _, _, _, name, aux_next = self.unpack("IHHII", aux_at)
                names.add(self.cstring(strtab + name))
                if aux_next == 0:
                    break
                aux_at += aux_next
            seen += 1
            if nxt == 0:
                break
            offset += nxt
        return names


def read_elf(data: bytes) -> ElfInfo:
    """The libraries and symbol versions an ELF file requires (raises :class:`ElfError`)."""
    reader = _Reader(data)
    dynamic = reader.dynamic()
    tags = dict(dynamic)
    needed: tuple[str, ...] = ()
    if _DT_STRTAB in tags:
        dynstr = reader.file_offset(tags[_DT_STRTAB])
        needed = tuple(reader.cstring(dynstr + v) for t, v in dynamic if t == _DT_NEEDED)
    sections = reader.sections()
    versions: set[str] = set()
    verneed = [s for s in sections if s[0] == _SHT_GNU_VERNEED]
    if verneed:
        for _, offset, size, link in verneed:
            if size:
                strtab = sections[link][1]
                versions |= reader.verneed_names(offset, None, strtab)
    elif _DT_VERNEED in tags and _DT_STRTAB in tags:
        # Section headers stripped: the dynamic segment still points at the same tables.
        offset = reader.file_offset(tags[_DT_VERNEED])
        strtab = reader.file_offset(tags[_DT_STRTAB])
        versions = reader.verneed_names(offset, tags.get(_DT_VERNEEDNUM), strtab)
    return ElfInfo(needed, frozenset(versions), reader.machine())


def is_elf(data: bytes) -> bool:
    return data[:4] == ELF_MAGIC


def elf_files_in_zip(path: Path) -> Iterator[tuple[str, ElfInfo]]:
    """Every ELF member of a zip (whatever its name: shared objects, executables) and its needs."""
    with zipfile.ZipFile(path) as archive:
        for member in archive.infolist():
            if member.is_dir():
                continue
            with archive.open(member) as handle:
                if not is_elf(handle.read(4)):
                    continue
            yield member.filename, read_elf(archive.read(member))


def elf_files_in_tree(root: Path) -> Iterator[tuple[str, ElfInfo]]:
    """Every ELF file under a folder (relative name, needs)."""
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            with open(path, "rb") as handle:
                if not is_elf(handle.read(4)):
                    continue
            yield path.relative_to(root).as_posix(), read_elf(path.read_bytes())


def highest(files: Iterable[tuple[str, ElfInfo]], prefix: str) -> tuple[tuple[int, ...], str]:
    """The highest ``prefix`` version any file requires and the first file requiring it."""
    best: tuple[tuple[int, ...], str] = ((), "")
    for name, info in files:
        version = info.highest(prefix)
        if version is not None and version > best[0]:
            best = (version, name)
    return best
