"""Build and check the Lambda deployment bundle of the classify API (``scripts/build_bundle``).

The modules are small on purpose: :mod:`bundler.runtime` knows the target Lambda runtimes,
:mod:`bundler.vendor` stages the app and vendors what ships, :mod:`bundler.strip` removes what the
runtime packages do not need at run time, :mod:`bundler.package` runs ``chalice package``,
:mod:`bundler.sizes` measures the zip and :mod:`bundler.elf` reads the glibc symbol versions every
compiled file requires.
"""
