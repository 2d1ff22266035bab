"""Each provider describes itself (``INFO``); the faces that spell a provider out as public
interface (client arguments, CLI flags, service settings, the API's provider enum) are held to
those declarations here, so a provider added or renamed cannot be half-wired."""

from __future__ import annotations

import argparse
import inspect
from typing import get_args

import pytest

from nanobanana import AsyncClient
from nanobanana.cli.common import add_base_url_options, base_urls_from
from nanobanana.client import DEFAULT_FALLBACKS
from nanobanana.errors import ValidationError
from nanobanana.providers import (
    INFOS,
    PROVIDER_MODULES,
    PROVIDERS,
    canonical_provider,
    missing_key,
    provider_class,
    resolve_provider_configs,
)

CANARY = "CANARY-provider-info-0123456789"


def test_every_module_declares_one_provider_and_its_class() -> None:
    assert len(INFOS) == len(PROVIDER_MODULES) == len(set(PROVIDERS))
    for name, info in INFOS.items():
        assert info.name == name
        cls = provider_class(name)
        assert cls.info is info and cls.name == name
        for other in info.quota_fallbacks:
            assert other in INFOS and other != name
    assert DEFAULT_FALLBACKS == {"google": ("openrouter",)}


@pytest.mark.parametrize("name", PROVIDERS)
def test_every_name_and_alias_is_accepted_in_any_case(name: str) -> None:
    for spelled in (name, *INFOS[name].aliases):
        assert canonical_provider(f" {spelled.upper()} ") == name
    with pytest.raises(ValidationError, match="Use one of: " + ", ".join(PROVIDERS)):
        canonical_provider("dall-e")


@pytest.mark.parametrize("name", PROVIDERS)
def test_the_key_and_url_come_from_what_the_provider_declares(name: str) -> None:
    info = INFOS[name]
    for var in info.key_env_vars:
        env = {var: CANARY, info.base_url_env_var: "http://127.0.0.1:9/x/"}
        config = resolve_provider_configs(env=env, use_keys_file=False)[name]
        assert config.api_key == CANARY
        assert info.url(config) == "http://127.0.0.1:9/x"
    config = resolve_provider_configs(env={}, use_keys_file=False)[name]
    assert config.api_key is None and info.url(config) == info.base_url
    message = str(missing_key(name))
    assert all(var in message for var in info.key_env_vars)
    assert f"{info.key_argument}=" in message and f"keys set {name}" in message


@pytest.mark.parametrize("name", PROVIDERS)
def test_the_client_takes_the_arguments_the_provider_names(name: str) -> None:
    info = INFOS[name]
    parameters = inspect.signature(AsyncClient.__init__).parameters
    assert info.key_argument in parameters and info.base_url_argument in parameters
    client = AsyncClient(
        env={},
        use_keys_file=False,
        **{info.key_argument: CANARY, info.base_url_argument: "http://127.0.0.1:9"},  # type: ignore[arg-type]
    )
    assert client.available_providers() == [name]
    assert client.configs[name].base_url == "http://127.0.0.1:9"


@pytest.mark.parametrize("name", PROVIDERS)
def test_the_cli_has_a_base_url_flag_for_the_provider(name: str) -> None:
    parser = argparse.ArgumentParser()
    add_base_url_options(parser)
    flag = "--" + INFOS[name].base_url_argument.replace("_", "-")
    args = parser.parse_args([flag, "http://127.0.0.1:9"])
    assert base_urls_from(args)[name] == "http://127.0.0.1:9"
    assert INFOS[name].base_url_env_var in parser.format_help()


@pytest.mark.parametrize("name", PROVIDERS)
def test_the_service_reads_the_provider_s_variables(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nanobanana.server.settings import Settings

    info = INFOS[name]
    for var in (*(v for p in INFOS.values() for v in p.key_env_vars), "NANOBANANA_DEMO"):
        monkeypatch.delenv(var, raising=False)
    for var in info.key_env_vars:
        monkeypatch.setenv(var, CANARY)
        monkeypatch.setenv(info.base_url_env_var, "http://127.0.0.1:9")
        settings = Settings(_env_file=None)  # type: ignore[call-arg]
        assert settings.server_keys() == {name: CANARY}
        assert settings.base_urls()[name] == "http://127.0.0.1:9"
        monkeypatch.delenv(var)


def test_the_api_offers_exactly_the_providers() -> None:
    from nanobanana.server.schemas import ProviderName

    assert get_args(ProviderName) == PROVIDERS
