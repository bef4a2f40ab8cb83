"""The containers provider's images: pinned defaults, ``--certload-images`` (CLI > ini >
env > default, checked), and the way the chosen images reach the containers."""

from __future__ import annotations

import re
import subprocess
from typing import Any

import pytest

from pytest_certload.errors import ConfigError, ImagesSyntaxError, ServiceError
from pytest_certload.settings import Settings, resolve
from pytest_certload.stack import StackInfo, containers
from pytest_certload.stack.containers import ContainerStack, container_specs
from pytest_certload.stack.images import (
    DEFAULT_IMAGES,
    IMAGE_ROLES,
    parse_images,
    resolve_images,
)
from pytest_certload.stack.session import StackRequest, open_stack

from .conftest import REPO

LOCAL = "postgres=localhost/certload/postgres:15-abc,certctl=localhost/certload/double:0.1.0-abc"


def _tag(image: str) -> str | None:
    """The tag of an image reference (None when it has none)."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def _compose_images() -> dict[str, str]:
    yaml = pytest.importorskip("yaml")
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    images = {}
    for name, service in compose["services"].items():
        image = service["image"]
        # ${VAR:-default}: the default is what runs unless the user sets VAR
        match = re.fullmatch(r"\$\{\w+:-(.+)\}", image)
        images[name] = match.group(1) if match else image
    return images


@pytest.mark.parametrize(
    "image",
    [*DEFAULT_IMAGES.values(), *_compose_images().values()],
)
def test_every_default_image_is_pinned_by_a_tag_not_latest(image: str) -> None:
    tag = _tag(image)
    assert tag is not None, f"{image} has no tag: pin one"
    assert tag != "latest", f"{image} follows 'latest': pin a release"


def test_the_tag_check_can_fail() -> None:
    assert _tag("ghcr.io/certctl-io/certctl-server") is None
    assert _tag("localhost:5000/x") is None  # a registry port is not a tag
    assert _tag("nginx:latest") == "latest"
    assert _tag("localhost:5000/x:1.2") == "1.2"


def test_roles_cover_the_stack() -> None:
    assert set(IMAGE_ROLES) == set(DEFAULT_IMAGES)
    assert DEFAULT_IMAGES["certctl"] == "ghcr.io/certctl-io/certctl-server:v2.1.0"


def test_parse_images_and_resolve_over_the_defaults() -> None:
    given = parse_images(f" {LOCAL.replace(',', ' , ')} ,\n")
    assert given == {
        "postgres": "localhost/certload/postgres:15-abc",
        "certctl": "localhost/certload/double:0.1.0-abc",
    }
    images = resolve_images(given)
    assert images["postgres"] == "localhost/certload/postgres:15-abc"
    assert images["nginx"] == DEFAULT_IMAGES["nginx"]  # a role not given keeps its default
    assert resolve_images(None) == dict(DEFAULT_IMAGES)


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("postgress=pg:16", "unknown role 'postgress' in 'postgress=pg:16'"),
        ("postgres", "'postgres' is not ROLE=IMAGE"),
        ("nginx=", "'' is not an image name for 'nginx'"),
        ("nginx=a b", "'a b' is not an image name for 'nginx'"),
        ("f5=a:1,f5=b:2", "'f5' given twice"),
        (" , ", "no ROLE=IMAGE pair"),
    ],
)
def test_bad_image_lists_name_the_offending_pair(raw: str, problem: str) -> None:
    with pytest.raises(ImagesSyntaxError) as info:
        parse_images(raw)
    assert info.value.problem == problem


def test_option_precedence_cli_ini_env_default() -> None:
    env = {"CERTLOAD_IMAGES": "nginx=env/nginx:1"}
    ini = {"certload_images": "nginx=ini/nginx:1"}
    cli = {"certload_images": {"nginx": "cli/nginx:1"}}
    assert resolve({}, {}, environ={}).images is None
    assert resolve({}, {}, environ=env).images == {"nginx": "env/nginx:1"}
    assert resolve({}, ini, environ=env).images == {"nginx": "ini/nginx:1"}
    settings = resolve(cli, ini, environ=env)
    assert settings.images == {"nginx": "cli/nginx:1"}
    assert settings.sources["certload_images"] == "command line --certload-images"


@pytest.mark.parametrize(
    ("ini", "env", "message"),
    [
        (
            {"certload_images": "postgress=pg:16"},
            {},
            "'postgress=pg:16' is not a valid image list (unknown role 'postgress' in "
            "'postgress=pg:16') for certload_images (from pytest.ini); use ROLE=IMAGE pairs "
            "separated by commas, ROLE one of postgres, certctl, nginx, apache, haproxy, f5",
        ),
        (
            {},
            {"CERTLOAD_IMAGES": "certctl"},
            "'certctl' is not a valid image list ('certctl' is not ROLE=IMAGE) for "
            "certload_images (from environment variable CERTLOAD_IMAGES); use ROLE=IMAGE pairs",
        ),
    ],
)
def test_a_bad_value_names_it_its_source_and_the_roles(
    ini: dict[str, str], env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        resolve({}, ini, ini_source="pytest.ini", environ=env)
    assert message in str(info.value)
    assert "scripts/container-images.sh" in str(info.value)


def test_the_images_reach_the_containers(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = resolve(
        {"certload_provider": "containers", "certload_images": parse_images(LOCAL)},
        {},
        environ={},
    )
    request = settings.stack_request()
    assert request.images == parse_images(LOCAL)
    made: list[ContainerStack] = []

    class Recording(ContainerStack):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            made.append(self)

        async def start(self) -> StackInfo:
            raise ServiceError("recorded, not started")

    monkeypatch.setattr(containers, "ContainerStack", Recording)
    with pytest.raises(ServiceError, match="recorded"), open_stack(request):
        pass
    (stack,) = made
    specs = {s.name: s.image for s in stack.specs()}
    assert specs["postgres"] == "localhost/certload/postgres:15-abc"
    assert specs["certctl-server"] == "localhost/certload/double:0.1.0-abc"
    assert specs["nginx-target"] == DEFAULT_IMAGES["nginx"]  # not given: the default
    assert StackRequest().images == {}
    assert Settings.defaults().stack_request().images == {}


def test_specs_take_every_role_from_the_images() -> None:
    images = {role: f"example/{role}:1" for role in IMAGE_ROLES}
    by_name = {s.name: s.image for s in container_specs(api_key="k", images=images)}
    assert by_name == {
        "postgres": "example/postgres:1",
        "certctl-server": "example/certctl:1",
        "nginx-target": "example/nginx:1",
        "apache-target": "example/apache:1",
        "haproxy-target": "example/haproxy:1",
        "f5-mock-target": "example/f5:1",
    }


def test_the_build_script_prints_a_valid_value_without_building() -> None:
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "container-images.sh"), "--print"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    images = parse_images(result.stdout.strip())
    assert set(images) == set(IMAGE_ROLES)
    assert images["certctl"] == images["f5"]  # the double's image runs the f5 mock too
    for image in images.values():
        assert image.startswith("localhost/certload/")
        tag = _tag(image)
        assert tag is not None
        assert tag != "latest"
