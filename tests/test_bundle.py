"""The Lambda bundle, built for real with ``chalice package`` from .venv-deploy (python3.12+, Amazon
Linux 2023: what users deploy). It must be within Lambda's limits and the project's 30 MiB goal,
run on its image's glibc and CPU, pass cfn-lint and answer API Gateway events from the unzipped zip
alone, with bytecode for every module its cold start imports."""

import base64
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from bundler.build import Bundle, build, set_stage_architecture
from bundler.elf import elf_files_in_zip
from bundler.emulator import interpreter_for
from bundler.package import offline_env
from bundler.probe import proxy_event
from bundler.runtime import DEPLOY_VENV, GLIBC, GLIBCXX, Target, deploy_target
from bundler.sizes import (
    MAX_UNZIPPED,
    MAX_ZIPPED,
    TARGET_ZIPPED,
    format_table,
    megabytes,
    model_zipped,
    with_trained_model,
)
from shared.paths import REPO
from tests.api_client import multipart_body
from tests.bundle_support import build_packaged, json_body, pinned, run_probe, unzip
from tests.imagegen import encode, synthetic_rgb

FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")


@pytest.fixture(scope="session")
def bundle(tmp_path_factory: pytest.TempPathFactory, exported_model: Path) -> Bundle:
    return build_packaged(tmp_path_factory, exported_model)


@pytest.fixture(scope="session")
def names(bundle: Bundle) -> set[str]:
    with zipfile.ZipFile(bundle.deployment_zip) as archive:
        return set(archive.namelist())


def test_bundle_is_within_lambda_limits(bundle: Bundle) -> None:
    unzipped = sum(row.unzipped for row in bundle.rows)
    print(f"\n{bundle.target.describe()}\n{format_table(bundle.rows, bundle.zip_size)}")
    print(f"zipped {megabytes(bundle.zip_size)} (target {megabytes(TARGET_ZIPPED)})")
    assert bundle.zip_size == bundle.deployment_zip.stat().st_size
    assert bundle.zip_size <= MAX_ZIPPED
    assert unzipped <= MAX_UNZIPPED
    assert bundle.problems == []


def test_bundle_with_a_trained_fp32_mobilenet_fits_the_30_mib_goal(
    bundle: Bundle, exported_model: Path
) -> None:
    # The test's model has random weights, which zip worse than trained ones; the goal is for the
    # trained fp32 MobileNetV2 (bundler/sizes.py), so its measured zipped size stands in.
    (model,) = [r for r in bundle.rows if r.name == "chalicelib/model"]
    assert model.unzipped == exported_model.stat().st_size  # the fp32 MobileNetV2 shipped
    assert model_zipped(bundle.rows) == model.zipped
    trained = with_trained_model(bundle.rows, bundle.zip_size)
    print(f"\nwith a trained fp32 MobileNetV2: {megabytes(trained)}")
    assert trained <= TARGET_ZIPPED


def test_zip_holds_what_ships_at_its_root(names: set[str]) -> None:
    for required in (
        "app.py",
        "chalice/app.py",
        "chalicelib/handlers.py",
        "shared/predictor.py",
        "skyclass_bundle.json",
        "chalicelib/model/model.onnx",
        "shared/decode.py",
        "numpy/__init__.py",
        "onnxruntime/__init__.py",
        "PIL/Image.py",
    ):
        assert required in names
    assert not any(n.startswith("vendor/") for n in names), "vendor/ must be unpacked at the root"


def test_stripped_files_are_gone(names: set[str]) -> None:
    for fragment in ("/tests/", "numpy/f2py/", "onnxruntime/tools/", "_avif."):
        assert not [n for n in names if fragment in n], fragment
    # Licence files stay in *.dist-info; the code is gone.
    assert not [n for n in names if n.startswith(("numpy/random/", "numpy/fft/"))]
    assert not [n for n in names if n.endswith((".pyi", ".h", ".a"))]
    # onnxruntime's dependency tree stays out: requirements.txt is empty on purpose.
    for package in ("sympy/", "coloredlogs/", "flatbuffers/", "google/protobuf/"):
        assert not [n for n in names if n.startswith(package)], package


def test_duplicate_onnxruntime_library_is_not_shipped(bundle: Bundle, names: set[str]) -> None:
    # onnxruntime 1.2x+ wheels carry libonnxruntime.so beside the Python module, which does not
    # load it (bundler/strip.py). The module ships; the duplicate does not, whichever wheel it was.
    assert [n for n in names if n.startswith("onnxruntime/capi/onnxruntime_pybind11_state")]
    assert not [n for n in names if n.startswith("onnxruntime/capi/libonnxruntime.so")]
    wheel_has_it = list(
        (bundle.target.packages_dir / "onnxruntime/capi").glob("libonnxruntime.so*")
    )
    stripped = [r.path for r in bundle.removed if "/libonnxruntime.so" in r.path]
    assert len(stripped) == len(wheel_has_it)


def test_bytecode_is_the_runtimes_own_and_only_beside_its_source(
    bundle: Bundle, names: set[str]
) -> None:
    tag = f".cpython-{bundle.target.python.replace('.', '')}.pyc"
    compiled = [n for n in names if n.endswith((".pyc", ".pyo"))]
    assert len(compiled) == bundle.bytecode > 100  # numpy, Pillow, onnxruntime, chalice, the app
    for name in compiled:
        folder, _, file = name.rpartition("__pycache__/")
        assert file.endswith(tag), name
        assert f"{folder}{file.removesuffix(tag)}.py" in names, name


def test_every_compiled_file_runs_on_the_target_glibc_and_cpu(bundle: Bundle) -> None:
    files = list(elf_files_in_zip(bundle.deployment_zip))
    assert len(files) > 20  # numpy, onnxruntime, Pillow and their libraries
    assert {info.machine for _, info in files} == {bundle.target.machine}
    for name, info in files:
        glibc = info.highest("GLIBC")
        assert glibc is None or glibc <= GLIBC, (name, glibc)
        glibcxx = info.highest("GLIBCXX")
        assert glibcxx is None or glibcxx <= GLIBCXX, (name, glibcxx)


@pytest.fixture(scope="session")
def cfn_lint_findings(bundle: Bundle) -> list[str]:
    """cfn-lint's findings on the generated template, one ``path:line:col:...:RULE:message`` each."""
    completed = subprocess.run(
        # The venv's cfn-lint (pinned in requirements-dev.txt), whatever is on PATH.
        [
            str(Path(sys.executable).with_name("cfn-lint")),
            "--format",
            "parseable",
            str(bundle.sam_json),
        ],
        capture_output=True,
        text=True,
        cwd=bundle.sam_json.parent,
    )
    assert not completed.stderr, completed.stderr
    return completed.stdout.splitlines()


def test_sam_template_passes_cfn_lint(bundle: Bundle, cfn_lint_findings: list[str]) -> None:
    template = json.loads(bundle.sam_json.read_text())
    function = template["Resources"]["APIHandler"]["Properties"]
    assert function["Runtime"] == f"python{bundle.target.python}"
    assert tuple(map(int, bundle.target.python.split("."))) >= (3, 12)
    assert function["Handler"] == "app.app"
    assert function["Architectures"] == [bundle.target.architecture]
    # Operator defaults (.chalice/config.json): logs expire, X-Ray is off until switched on.
    config = json.loads((bundle.app_dir / ".chalice" / "config.json").read_text())
    groups = [r for r in template["Resources"].values() if r["Type"] == "AWS::Logs::LogGroup"]
    assert [g["Properties"]["RetentionInDays"] for g in groups] == [30]
    assert config["log_retention_in_days"] == 30
    assert config["xray"] is False and function["Tracing"] == "PassThrough"
    assert "ReservedConcurrentExecutions" not in function  # optional, docs/deploy.md
    # No finding at all: the lifecycle rules (E2531/E2533/W2531) would flag a retired runtime.
    assert cfn_lint_findings == []


def test_packaging_downloads_nothing(bundle: Bundle) -> None:
    # chalice runs pip only for packages listed in requirements.txt (and ran with PIP_NO_INDEX).
    lines = (bundle.app_dir / "requirements.txt").read_text().splitlines()
    assert [line for line in lines if line.strip() and not line.lstrip().startswith("#")] == []


@pytest.fixture(scope="session")
def unzipped(bundle: Bundle, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return unzip(bundle.deployment_zip, tmp_path_factory.mktemp("lambda") / "task")


def test_handler_answers_api_gateway_events_from_the_unzipped_bundle(
    bundle: Bundle, unzipped: Path, jpeg_bytes: bytes, png_bytes: bytes
) -> None:
    form, form_type = multipart_body([("file", "bird.png", "image/png", png_bytes)])
    events = [
        proxy_event("POST", "/classify", jpeg_bytes, {"Content-Type": "image/jpeg"}),
        proxy_event("POST", "/classify", form, {"Content-Type": form_type}),
        proxy_event("POST", "/classify", b"this is not an image", {"Content-Type": "image/jpeg"}),
        proxy_event("POST", "/classify", "<xml/>", {"Content-Type": "text/xml"}),
        proxy_event("GET", "/health"),
    ]
    result = run_probe([unzipped], {"events": events, "origins": True, "loaded": True})

    for module, origin in result["origins"]["files"].items():
        assert Path(origin).is_relative_to(unzipped), (module, origin)
    assert not [p for p in result["origins"]["sys_path"] if "site-packages" in p]
    assert Path(result["invoke"]["app"]).is_relative_to(unzipped)
    raw, multipart, garbage, wrong_type, health = result["invoke"]["responses"]
    for response in (raw, multipart):
        assert response["statusCode"] == 200, response
        body = json_body(response)
        assert body["label"] in body["probabilities"]
        assert abs(sum(body["probabilities"].values()) - 1) < 1e-4
    assert garbage["statusCode"] == 400
    assert json_body(garbage)["error"] == "invalid_image"
    assert wrong_type["statusCode"] == 415
    assert json_body(wrong_type)["error"] == "unsupported_media_type"
    assert health["statusCode"] == 200
    runtime = json_body(health)["runtime"]
    assert runtime["onnxruntime"] == pinned("onnxruntime")
    assert runtime["python"].startswith(f"{bundle.target.python}.")
    # The cold start compiles nothing: every module it imported had valid bytecode in the zip.
    loaded = result["loaded"]
    assert len(loaded) > 100
    assert [m["file"] for m in loaded if m["bytecode"] != "valid"] == []


def test_stripped_pillow_still_decodes_every_allowed_format(bundle: Bundle, unzipped: Path) -> None:
    rgb = synthetic_rgb(300, 260, seed=3)
    images = {fmt: base64.b64encode(encode(rgb, fmt)).decode() for fmt in FORMATS}
    result = run_probe([unzipped], {"images": images})
    assert result["decoded"] == {fmt: [260, 300, 3] for fmt in FORMATS}


def test_vendor_built_for_another_architecture_is_refused_in_one_line(
    bundle: Bundle, tmp_path: Path
) -> None:
    app = tmp_path / "app"
    shutil.copytree(bundle.app_dir, app, symlinks=True)
    other = {"x86_64": "arm64", "arm64": "x86_64"}[bundle.target.architecture]
    set_stage_architecture(app, other)
    done = subprocess.run(
        [str(DEPLOY_VENV / "bin" / "chalice"), "package", str(tmp_path / "out")],
        cwd=app, env=offline_env(), capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode != 0
    message = done.stderr.strip().splitlines()
    assert len(message) == 1, done.stderr
    assert (
        f"vendor/ was built for python{bundle.target.python} {bundle.target.architecture}"
        in (message[0])
    )
    assert f"deploys python{bundle.target.python} {other}" in message[0]
    assert not (tmp_path / "out").exists()


def test_unknown_architecture_is_refused_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bundler", "--out", str(tmp_path), "--architecture", "ppc64le"],
        cwd=REPO, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "scripts/build_bundle: error: lambda_architecture 'ppc64le' is not supported; "
        "use one of x86_64, arm64"
    )


@pytest.fixture(scope="session")
def arm64_bundle(tmp_path_factory: pytest.TempPathFactory, exported_model: Path) -> Bundle:
    target = Target(deploy_target().python, "arm64")
    return build(target, model=exported_model, out=tmp_path_factory.mktemp("arm64"))


def test_arm64_bundle_holds_only_aarch64_libraries(arm64_bundle: Bundle) -> None:
    files = list(elf_files_in_zip(arm64_bundle.deployment_zip))
    assert len(files) > 20
    assert {info.machine for _, info in files} == {"aarch64"}
    assert arm64_bundle.problems == []
    assert with_trained_model(arm64_bundle.rows, arm64_bundle.zip_size) <= TARGET_ZIPPED
    template = json.loads(arm64_bundle.sam_json.read_text())
    assert template["Resources"]["APIHandler"]["Properties"]["Architectures"] == ["arm64"]
    stamp = json.loads(arm64_bundle.app_dir.joinpath("vendor", "skyclass_bundle.json").read_text())
    assert stamp["architecture"] == "arm64"
    # Where an emulated aarch64 Python is set up (python -m bundler.emulator) the build ran it.
    emulated = interpreter_for(Target(arm64_bundle.target.python, "arm64")) is not None
    assert arm64_bundle.ran_under.endswith("(emulated)") == emulated, arm64_bundle.ran_under
