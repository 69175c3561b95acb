"""The transport the settings ask for (partnerguard/alerts/transport_from_settings.py, SPEC §5): ACS with its
connection string (HMAC), ACS with the managed identity (Entra token for the Communication
Services scope), or the `.eml` outbox; none when alerts are not configured."""

from __future__ import annotations

from pathlib import Path

import pytest
from azure.core.pipeline.policies import BearerTokenCredentialPolicy
from azure.identity import ManagedIdentityCredential

from notifiers.acs import AcsTransport
from notifiers.outbox import EmlOutbox
from partnerguard.alerts.transport_from_settings import OUTBOX_SENDER, build_transport
from partnerguard.settings import ConfigError, Settings

IDENTITY = "11111111-2222-4333-8444-555555555555"
ACCESS_KEY = "c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seQ=="


def settings(**environment: str) -> Settings:
    return Settings.from_env({"PARTNERGUARD_STORAGE": "UseDevelopmentStorage=true", **environment})


def test_no_transport_without_email_settings() -> None:
    assert build_transport(settings()) is None


def test_the_outbox_writes_eml_files_from_the_sender_or_a_reserved_address(tmp_path: Path) -> None:
    outbox = build_transport(settings(EMAIL_OUTBOX_DIR=str(tmp_path)))
    assert isinstance(outbox, EmlOutbox) and outbox.directory == tmp_path and outbox.sender == OUTBOX_SENDER
    named = build_transport(settings(EMAIL_OUTBOX_DIR=str(tmp_path), EMAIL_SENDER="alerts@contoso.example"))
    assert isinstance(named, EmlOutbox) and named.sender == "alerts@contoso.example"


def test_a_connection_string_signs_with_the_access_key() -> None:
    transport = build_transport(
        settings(
            ACS_CONNECTION_STRING=f"endpoint=https://contoso.communication.azure.com/;accesskey={ACCESS_KEY}",
            EMAIL_SENDER="alerts@contoso.example",
        )
    )
    assert isinstance(transport, AcsTransport)
    # Named for logs by its endpoint only: the access key never appears.
    assert ACCESS_KEY not in transport.name and "contoso.communication.azure.com" in transport.name
    policy = transport.client._config.authentication_policy
    assert type(policy).__name__ == "HMACCredentialsPolicy"
    transport.close()


def test_an_endpoint_signs_in_with_the_user_assigned_managed_identity() -> None:
    transport = build_transport(
        settings(
            ACS_ENDPOINT="https://contoso.communication.azure.com",
            EMAIL_SENDER="alerts@contoso.example",
            PARTNERGUARD_IDENTITY_CLIENT_ID=IDENTITY,
        )
    )
    assert isinstance(transport, AcsTransport)
    policy = transport.client._config.authentication_policy
    assert isinstance(policy, BearerTokenCredentialPolicy)
    # The Communication Services scope, with the identity of PARTNERGUARD_IDENTITY_CLIENT_ID.
    assert policy._scopes == ("https://communication.azure.com//.default",)
    credential = policy._credential
    assert isinstance(credential, ManagedIdentityCredential)
    transport.close()


def test_an_endpoint_without_the_identity_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="PARTNERGUARD_IDENTITY_CLIENT_ID"):
        settings(ACS_ENDPOINT="https://contoso.communication.azure.com", EMAIL_SENDER="alerts@contoso.example")


def test_the_access_key_never_names_the_transport_whatever_the_order_of_the_parts() -> None:
    settings_with_key_first = settings(
        ACS_CONNECTION_STRING=f"accesskey={ACCESS_KEY};endpoint=https://contoso.communication.azure.com/",
        EMAIL_SENDER="alerts@contoso.example",
    )
    transport = build_transport(settings_with_key_first)
    assert isinstance(transport, AcsTransport)
    assert ACCESS_KEY not in transport.name and "contoso.communication.azure.com" in transport.name
    transport.close()
    # The key on its own is a secret the logs mask, not only the whole connection string.
    assert ACCESS_KEY in settings_with_key_first.secret_values()


def test_a_storage_account_key_is_a_secret_on_its_own() -> None:
    key = "c3RvcmFnZS1hY2NvdW50LWtleS1mb3ItdGVzdHM="
    connection = f"DefaultEndpointsProtocol=https;AccountName=pg;AccountKey={key};EndpointSuffix=core.windows.net"
    assert key in settings(PARTNERGUARD_STORAGE=connection).secret_values()
