"""Build and check the Lambda deployment bundle of the classify API (``scripts/build_bundle``).

The modules are small on purpose: :mod:`bundler.runtime` knows the target Lambda runtimes and
their pins, :mod:`bundler.vendor` stages the app and vendors what ships, :mod:`bundler.strip`
removes what the runtime packages do not need at run time, :mod:`bundler.verify` runs the stripped
bundle and compiles its bytecode, :mod:`bundler.package` runs ``chalice package``,
:mod:`bundler.sizes` measures the zip and :mod:`bundler.elf` reads the CPU and glibc symbol
versions every compiled file requires. :mod:`bundler.isolated` runs code in a fresh interpreter
(:mod:`bundler.probe` is what runs there), :mod:`bundler.emulator` sets up an emulated arm64 one.
"""
