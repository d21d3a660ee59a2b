"""An emulated Python of another CPU, so an arm64 bundle can be run on an x86-64 machine.

    python -m bundler.emulator [--architecture arm64]   # once; needs qemu-user-static and apt

Debian's ``qemu-user-static`` runs single aarch64 programs; the interpreter and the libraries it
needs (glibc, libstdc++, zlib, ...) come from Debian's own arm64 packages, downloaded with apt into
``.runtimes/emulator-aarch64/`` (no root needed, nothing installed on the system). Debian 13's
Python is 3.13, the version the bundle is built for; bytecode is compiled by the runtime's own
minor version either way. Slow (a cold start takes about a minute) but real: the bundle's own
aarch64 numpy, onnxruntime and Pillow load and answer.
"""

import argparse
import os
import shutil
import subprocess
from pathlib import Path

from bundler.runtime import (
    ARCHITECTURES,
    RUNTIMES,
    RuntimeSetupError,
    Target,
    deploy_interpreter,
    deploy_target,
)

SUITE = "trixie"  # Debian 13: python3.13
MIRROR = "http://deb.debian.org/debian"
DEBIAN_ARCH = {"aarch64": "arm64", "x86_64": "amd64"}
PACKAGES = ("python3.13-minimal", "libpython3.13-stdlib", "libstdc++6", "zlib1g")
# qemu-user passes the host's /proc/cpuinfo through, and onnxruntime's CPU detection (pytorch's
# cpuinfo) dereferences NULL on x86 lines. qemu looks absolute paths up in the sysroot first, so
# the sysroot carries what a Graviton2 (Neoverse N1, Lambda's arm64 CPU) shows; the emulated CPU
# is the same model.
QEMU_CPU = "neoverse-n1"
_CPUINFO = """processor\t: {n}
BogoMIPS\t: 243.75
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc \
dcpop asimddp ssbs
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x3
CPU part\t: 0xd0c
CPU revision\t: 1
"""


def root_for(machine: str) -> Path:
    return RUNTIMES / f"emulator-{machine}"


def interpreter_for(target: Target) -> Path | None:
    """A Python of the target's version that runs the target's binaries: ``.venv-deploy``'s on
    its own CPU, else the emulated one :func:`set_up` made (None without it)."""
    return deploy_interpreter() if target.native() else emulated_python(target)


def emulated_python(target: Target) -> Path | None:
    """The wrapper that runs the emulated interpreter for ``target``, if it was set up."""
    wrapper = root_for(target.machine) / f"python{target.python}"
    return wrapper if wrapper.is_file() and shutil.which(f"qemu-{target.machine}-static") else None


def _apt(root: Path, machine: str, *args: str, cwd: Path | None = None) -> str:
    state = root / "apt"
    for folder in ("lists/partial", "cache/archives/partial"):
        (state / folder).mkdir(parents=True, exist_ok=True)
    (state / "status").touch()
    sources = state / "sources.list"
    keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
    sources.write_text(
        f"deb [arch={DEBIAN_ARCH[machine]} signed-by={keyring}] {MIRROR} {SUITE} main\n"
    )
    options = {
        "APT::Architecture": DEBIAN_ARCH[machine],
        "APT::Architectures": DEBIAN_ARCH[machine],
        "Dir::Etc::SourceList": sources,
        "Dir::Etc::SourceParts": "/nonexistent",
        "Dir::State": state,
        "Dir::State::status": state / "status",
        "Dir::Cache": state / "cache",
    }
    flags = [f"-o{key}={value}" for key, value in options.items()]
    done = subprocess.run(
        ["apt-get" if args[0] != "depends" else "apt-cache", *flags, *args],
        cwd=cwd or state, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout


def set_up(target: Target) -> Path:
    """Download the interpreter and its libraries and write the wrapper (idempotent)."""
    machine = target.machine
    if not shutil.which(f"qemu-{machine}-static"):
        raise RuntimeSetupError("no qemu: apt-get install qemu-user-static")
    root = root_for(machine)
    sysroot = root / "sysroot"
    _apt(root, machine, "update", "-qq")
    listing = _apt(root, machine, "depends", "--recurse", "--no-recommends", "--no-suggests",
                   "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances", *PACKAGES)  # fmt: skip
    names = sorted({line for line in listing.splitlines() if line and line[0] not in " <"})
    # Only libraries and the interpreter: the rest of the closure is the package system's own.
    wanted = [n for n in names if n.startswith(("lib", "python3", "zlib"))]
    debs = root / "debs"
    debs.mkdir(exist_ok=True)
    _apt(root, machine, "download", "-qq", *wanted, cwd=debs)  # into the working folder
    shutil.rmtree(sysroot, ignore_errors=True)
    sysroot.mkdir()
    for deb in debs.glob("*.deb"):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(sysroot)], check=True)
    for link in ("lib", "bin"):  # the merged-/usr layout the loader path expects
        if not (sysroot / link).exists():
            (sysroot / link).symlink_to(f"usr/{link}")
    (sysroot / "proc").mkdir()
    cpus = "\n".join(_CPUINFO.format(n=n) for n in range(2))
    (sysroot / "proc" / "cpuinfo").write_text(cpus, encoding="ascii")
    wrapper = root / f"python{target.python}"
    interpreter = sysroot / "usr" / "bin" / f"python{target.python}"
    if not interpreter.is_file():
        raise RuntimeSetupError(f"Debian {SUITE} has no python{target.python} for {machine}")
    wrapper.write_text(
        f'#!/bin/sh\nexec qemu-{machine}-static -cpu {QEMU_CPU} -L "{sysroot}" "{interpreter}" "$@"\n'
    )
    wrapper.chmod(0o755)
    return wrapper


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--architecture", choices=tuple(ARCHITECTURES), default="arm64")
    parser.add_argument("--python", default=None, help="X.Y (default: .venv-deploy's)")
    args = parser.parse_args(argv)
    target = deploy_target(args.architecture)
    if args.python:
        target = Target(args.python, args.architecture)
    wrapper = set_up(target)
    code = "import platform, sys; print(sys.version.split()[0], platform.machine())"
    env = {"PATH": os.environ["PATH"]}
    done = subprocess.run([wrapper, "-I", "-c", code], capture_output=True, text=True, env=env)
    print(f"emulated python {done.stdout.strip() or done.stderr.strip()}: {wrapper}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
