"""``--certctl-env KEY=VALUE``: certctl's own settings for the certctl the harness starts.

Resolved like every option (CLI > ini > env), validated before any test runs without
repeating a value (it may be a secret), refused for an external certctl, masked in reprs
and reports; the end-to-end case boots the embedded stack with certctl's default rate
limiter switched back on and sees it answer 429, where the stack's own setting (limiter
off) does not.
"""

from __future__ import annotations

import pytest

from pytest_certload.errors import ConfigError
from pytest_certload.redaction import MASK, redact_environment, secret_variable
from pytest_certload.settings import resolve
from pytest_certload.stack.containers import container_specs

SECRET = "s3cret-value-never-shown"

SHOW = """
def test_show(certload_settings):
    env = certload_settings.certctl_env
    print("ENV", sorted(env.items()) if env else None)
    print("SOURCE", certload_settings.sources["certload_certctl_env"])
"""


def test_cli_items_merge_and_win_over_ini_and_env() -> None:
    settings = resolve(
        {"certload_certctl_env": [{"CERTCTL_RATE_LIMIT_ENABLED": "true"}, {"GOMAXPROCS": "2"}]},
        {"certload_certctl_env": "CERTCTL_LOG_LEVEL=info"},
        environ={"CERTLOAD_CERTCTL_ENV": "CERTCTL_LOG_LEVEL=debug"},
    )
    assert settings.certctl_env == {"CERTCTL_RATE_LIMIT_ENABLED": "true", "GOMAXPROCS": "2"}
    assert settings.sources["certload_certctl_env"] == "command line --certctl-env"
    assert settings.stack_request().certctl_env == settings.certctl_env
    from_ini = resolve(
        {},
        {"certload_certctl_env": "CERTCTL_LOG_LEVEL=info\n\nCERTCTL_RATE_LIMIT_RPS = 50 "},
        environ={"CERTLOAD_CERTCTL_ENV": "CERTCTL_LOG_LEVEL=debug"},
    )
    assert from_ini.certctl_env == {"CERTCTL_LOG_LEVEL": "info", "CERTCTL_RATE_LIMIT_RPS": "50"}
    from_env = resolve(
        {}, {}, environ={"CERTLOAD_CERTCTL_ENV": "A=x=y\nCERTCTL_ACME_SERVER_TOS_URL=https://t/s"}
    )
    # only the first '=' separates; a value may hold '=' and '/'
    assert from_env.certctl_env == {"A": "x=y", "CERTCTL_ACME_SERVER_TOS_URL": "https://t/s"}
    assert resolve({}, {}, environ={}).certctl_env is None


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            f"{SECRET}",
            "the value (not repeated here: it may hold a secret) is not a valid certctl "
            "setting for certload_certctl_env (from environment variable CERTLOAD_CERTCTL_ENV); "
            "use KEY=VALUE with KEY in upper case",
        ),
        (
            f"GOMAXPROCS=2\n{SECRET}",
            "line 2 (not repeated here: it may hold a secret) is not a valid certctl setting",
        ),
        (f"lower_case={SECRET}", "'lower_case' is not a valid certctl variable name"),
        ("CERTCTL_RATE_LIMIT_ENABLED", "'CERTCTL_RATE_LIMIT_ENABLED' is not a valid certctl "),
        (
            f"CERTCTL_SERVER_PORT={SECRET}",
            "'CERTCTL_SERVER_PORT=…' is not a valid certctl setting for certload_certctl_env "
            "(from environment variable CERTLOAD_CERTCTL_ENV); use a variable pytest-certload "
            "does not set itself to reach the certctl it starts (not CERTCTL_API_KEYS_NAMED,",
        ),
        (
            f"CERTCTL_AUTH_SECRET={SECRET}",
            "'CERTCTL_AUTH_SECRET=…' is not a valid certctl setting",
        ),
        (
            f"CERTCTL_CONFIG_ENCRYPTION_KEY={SECRET},CERTCTL_RATE_LIMIT_ENABLED=true",
            "a ',' does not separate settings (the value of CERTCTL_CONFIG_ENCRYPTION_KEY holds "
            "another KEY=VALUE after a ',')",
        ),
        (
            f"CERTCTL_CONFIG_ENCRYPTION_KEY={SECRET}\nCERTCTL_CONFIG_ENCRYPTION_KEY=x",
            "use each KEY once (CERTCTL_CONFIG_ENCRYPTION_KEY is given twice)",
        ),
    ],
)
def test_bad_settings_are_refused_without_repeating_a_value(raw: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve({}, {}, environ={"CERTLOAD_CERTCTL_ENV": raw})
    text = str(caught.value)
    assert message in text
    assert SECRET not in text


def test_a_key_given_twice_on_the_command_line_is_refused() -> None:
    items = [{"CERTCTL_RATE_LIMIT_RPS": "5"}, {"CERTCTL_RATE_LIMIT_RPS": SECRET}]
    with pytest.raises(ConfigError) as caught:
        resolve({"certload_certctl_env": items}, {}, environ={})
    assert "'CERTCTL_RATE_LIMIT_RPS=…' is not a valid certctl setting for " in str(caught.value)
    assert "(from command line --certctl-env)" in str(caught.value)
    assert SECRET not in str(caught.value)


def test_the_external_provider_refuses_it_naming_the_keys_only() -> None:
    with pytest.raises(ConfigError) as caught:
        resolve(
            {"certload_certctl_url": "https://user:pw@certctl.example:8443"},
            {},
            environ={"CERTLOAD_CERTCTL_ENV": f"CERTCTL_AGENT_BOOTSTRAP_TOKEN={SECRET}"},
        )
    text = str(caught.value)
    assert text.startswith(
        "--certctl-env (from environment variable CERTLOAD_CERTCTL_ENV) sets "
        "CERTCTL_AGENT_BOOTSTRAP_TOKEN for the certctl pytest-certload starts, but the external "
        "provider (from implied by command line --certctl-url) measures the certctl at "
        "https://certctl.example:8443, which someone else runs; set these where that certctl "
        "runs"
    )
    assert SECRET not in text
    assert "pw" not in text.split("https://")[1].split()[0]


def test_secret_values_are_masked_in_reprs() -> None:
    settings = resolve(
        {"certload_certctl_env": [{"CERTCTL_CONFIG_ENCRYPTION_KEY": SECRET}, {"A": "shown"}]},
        {},
        environ={},
    )
    assert SECRET not in repr(settings)
    assert "certctl_env={'CERTCTL_CONFIG_ENCRYPTION_KEY': '***', 'A': 'shown'}" in repr(settings)
    assert SECRET not in repr(settings.stack_request())
    assert secret_variable("CERTCTL_AUTH_SECRET")
    assert secret_variable("X_API_KEYS_NAMED")
    assert not secret_variable("CERTCTL_KEYGEN_MODE")
    assert redact_environment({"CERTCTL_X_URL": f"postgres://u:{SECRET}@h/db"}) == {
        "CERTCTL_X_URL": f"postgres://u:{MASK}@h/db"
    }


def test_the_containers_provider_passes_them_to_certctl() -> None:
    specs = container_specs(api_key="k", extra_certctl_env={"CERTCTL_RATE_LIMIT_ENABLED": "true"})
    certctl = next(s for s in specs if s.name == "certctl-server")
    assert certctl.env["CERTCTL_RATE_LIMIT_ENABLED"] == "true"
    assert certctl.env["CERTCTL_SERVER_PORT"] == "8443"


def test_cli_ini_and_env_spellings_reach_the_settings(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_show=SHOW)
    monkeypatch.setenv("CERTLOAD_CERTCTL_ENV", "GOMAXPROCS=1\nCERTCTL_LOG_LEVEL=debug")
    env = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider")
    env.stdout.fnmatch_lines(
        [
            "*ENV [[]('CERTCTL_LOG_LEVEL', 'debug'), ('GOMAXPROCS', '1')[]]",
            "SOURCE environment variable CERTLOAD_CERTCTL_ENV",
        ]
    )
    pytester.makeini(
        "[pytest]\ncertload_certctl_env =\n    CERTCTL_RATE_LIMIT_ENABLED=true\n"
        "    CERTCTL_RATE_LIMIT_RPS=5\n"
    )
    ini = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider")
    ini.stdout.fnmatch_lines(
        ["*ENV [[]('CERTCTL_RATE_LIMIT_ENABLED', 'true'), ('CERTCTL_RATE_LIMIT_RPS', '5')[]]"]
    )
    cli = pytester.runpytest_subprocess(
        "-s", "-p", "no:cacheprovider", "--certctl-env", "A=1", "--certctl-env=B=2"
    )
    cli.stdout.fnmatch_lines(["*ENV [[]('A', '1'), ('B', '2')[]]", "SOURCE command line *"])
    bad = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--certctl-env={SECRET}")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(
        [
            "*argument --certctl-env: the value (not repeated here: it may hold a secret) is not"
            " a valid certctl setting; use KEY=VALUE*"
        ]
    )
    assert SECRET not in bad.stdout.str() + bad.stderr.str()


LIMITER = """
import httpx

from pytest_certload.fixtures import SESSION_KEY


def test_burst(certload_stack, pytestconfig):
    print("LABEL", pytestconfig.stash[SESSION_KEY].target)
    url = certload_stack.certctl_url + "/api/v1/certificates?per_page=1"
    headers = {"Authorization": "Bearer " + certload_stack.token}
    with httpx.Client(verify=certload_stack.verify(), timeout=10) as client:
        statuses = [client.get(url, headers=headers).status_code for _ in range(12)]
    print("STATUSES", sorted(set(statuses)), "429s", statuses.count(429))
"""


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        # the stack's own setting: certctl's limiter off
        ((), "STATUSES [[]200[]] 429s 0"),
        # certctl's default limiter, made tight: a burst of 3, one token a second
        (
            (
                "--certctl-env=CERTCTL_RATE_LIMIT_ENABLED=true",
                "--certctl-env=CERTCTL_RATE_LIMIT_BURST=3",
                "--certctl-env=CERTCTL_RATE_LIMIT_RPS=1",
            ),
            "STATUSES [[]200, 429[]] 429s *",
        ),
    ],
    ids=["stack-default", "limiter-on"],
)
def test_the_double_started_by_the_stack_honours_the_settings(
    pytester: pytest.Pytester, args: tuple[str, ...], expected: str
) -> None:
    pytester.makepyfile(test_limiter=LIMITER)
    result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider", *args, timeout=120)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"*{expected}"])
    # the report header says what certctl was started with
    label = "*LABEL certctl reference double * (local provider)"
    if args:
        label += (
            " with CERTCTL_RATE_LIMIT_ENABLED=true, CERTCTL_RATE_LIMIT_BURST=3, "
            "CERTCTL_RATE_LIMIT_RPS=1"
        )
    result.stdout.fnmatch_lines([label])
