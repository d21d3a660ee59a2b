"""Deploy rehearsal: the real ``chalice deploy`` / ``chalice delete`` CLI against moto on loopback.

It rehearses what users run (scripts/deploy): the deploy venv's chalice (.venv-deploy, Python
3.12+) on the bundle tests/test_bundle.py checks (built once per session). moto stands in for AWS
at the network boundary only; tests/moto_server.py lists where its API Gateway import had to be
brought in line with the real service.
"""

import json
import subprocess
from pathlib import Path

import boto3
import pytest

from bundler.build import Bundle
from bundler.runtime import DEPLOY_VENV
from chalicelib import media_types
from tests.api_client import free_port
from tests.bundle_support import build_packaged
from tests.moto_server import aws_env, moto_server


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory, exported_model: Path) -> Bundle:
    return build_packaged(tmp_path_factory, exported_model)


def chalice(bundle: Bundle, args: list[str], env: dict[str, str]) -> str:
    """Run the deploy venv's chalice CLI in the bundle's app folder."""
    completed = subprocess.run(
        [str(DEPLOY_VENV / "bin" / "chalice"), *args],
        cwd=bundle.app_dir,
        env=env,
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout


def test_chalice_deploy_and_delete_against_moto(bundle: Bundle, tmp_path: Path) -> None:
    config = json.loads((bundle.app_dir / ".chalice" / "config.json").read_text())
    with moto_server(free_port(), tmp_path / "moto.log") as endpoint:
        env = aws_env(endpoint)
        aws = boto3.Session(
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region_name=env["AWS_DEFAULT_REGION"],
        )
        lambda_ = aws.client("lambda", endpoint_url=endpoint)
        apigateway = aws.client("apigateway", endpoint_url=endpoint)

        out = chalice(bundle, ["deploy", "--stage", "dev"], env)
        assert "Rest API URL: https://" in out
        deployed = json.loads((bundle.app_dir / ".chalice/deployed/dev.json").read_text())
        resources = {r["resource_type"]: r for r in deployed["resources"]}

        function = lambda_.get_function_configuration(FunctionName="skyclass-dev")
        assert function["Runtime"] == f"python{bundle.target.python}"
        assert function["Runtime"] in ("python3.12", "python3.13", "python3.14")
        assert function["Handler"] == "app.app"
        assert function["MemorySize"] == config["lambda_memory_size"]
        assert function["Timeout"] == config["lambda_timeout"]
        # chalice deploy reuses the package chalice package built: the same bytes are uploaded.
        assert function["CodeSize"] == bundle.zip_size

        api = apigateway.get_rest_api(restApiId=resources["rest_api"]["rest_api_id"])
        assert api["name"] == "skyclass"
        assert set(media_types.RAW_TYPES) | {media_types.MULTIPART} <= set(api["binaryMediaTypes"])
        paths = {r["path"] for r in apigateway.get_resources(restApiId=api["id"])["items"]}
        assert {"/", "/classify", "/health"} <= paths
        stages = apigateway.get_stages(restApiId=api["id"])["item"]
        assert [s["stageName"] for s in stages] == [config["stages"]["dev"]["api_gateway_stage"]]

        chalice(bundle, ["delete", "--stage", "dev"], env)
        assert lambda_.list_functions()["Functions"] == []
        assert apigateway.get_rest_apis()["items"] == []
