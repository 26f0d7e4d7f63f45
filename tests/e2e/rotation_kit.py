"""Helpers for end-to-end runs of the engine: requests against a landscape, state checks."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from cf_sandbox import Landscape
from cpi_cert_rotate import material
from cpi_cert_rotate.models import CfAuth, CfTarget, RotationRequest

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def request_for(ls: Landscape, chain_pem: str, key_pem: str, **overrides: Any) -> RotationRequest:
    """A rotation request against `ls` with a new chain and key (and any field overridden)."""
    request = RotationRequest(
        target=CfTarget(ls.api_url, ls.org, ls.space, ls.app, ls.service_instance),
        auth=CfAuth(username=ls.username, password=ls.password, origin=ls.origin, ca_pem=ls.ca_pem),
        chain=material.load_chain(chain_pem),
        key=material.load_key(key_pem),
        # The sandbox's root is not on SAP's list: trust it as a user with a private CA would.
        trusted_roots=material.load_chain(ls.trusted_root_pem),
        verify_path="/http/ping",
        timeout_s=120.0,
        verify_timeout_s=5.0,
    )
    return replace(request, **overrides)


def write_calls(ls: Landscape, since: int = 0) -> list[dict[str, Any]]:
    """Cloud Controller calls that change something (token requests are not writes)."""
    return [
        c
        for c in ls.calls()[since:]
        if c["method"] in WRITE_METHODS and c["path"].startswith("/v3/")
    ]


def sha256_hex(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def the_app(ls: Landscape) -> dict[str, Any]:
    apps = ls.state()["apps"]
    return next(a for a in apps if a["name"] == ls.app)


def env_leaf_sha256(ls: Landscape) -> str:
    """The leaf of the app's CLI_CHAIN env var, checked against CLI_KEY (they must pair)."""
    env = the_app(ls)["env"]
    chain = x509.load_pem_x509_certificates(env["CLI_CHAIN"].encode())
    key = serialization.load_pem_private_key(env["CLI_KEY"].encode(), password=None)
    assert chain[0].public_key().public_numbers() == key.public_key().public_numbers(), (
        "the env holds a chain and a key that do not belong together"
    )
    return sha256_hex(chain[0])


def live_binding_leaves(ls: Landscape) -> set[str]:
    app_guid = the_app(ls)["guid"]
    return {
        b["leaf_sha256"]
        for b in ls.state()["bindings"]
        if b["app_guid"] == app_guid and b["state"] == "succeeded"
    }


def accepted_leaves(ls: Landscape) -> set[str]:
    """Every leaf CPI accepts through the app's bindings: live ones and failed deletes."""
    app_guid = the_app(ls)["guid"]
    return {
        b["leaf_sha256"]
        for b in ls.state()["bindings"]
        if b["app_guid"] == app_guid
        and (b["operation"], b["state"]) in (("create", "succeeded"), ("delete", "failed"))
    }


def assert_consistent(ls: Landscape) -> str:
    """Never half-way: env chain and key pair up and a live binding registers the leaf."""
    leaf = env_leaf_sha256(ls)
    assert leaf in live_binding_leaves(ls), "the env's leaf is not registered by a live binding"
    return leaf


def instance_leaves(ls: Landscape) -> list[str]:
    return [i["leaf_sha256"] for i in the_app(ls)["instances"]]
