"""Targets files: shape, keys and lines checked, every problem at once; each target's
values through exactly the single run's rules; layering, material by file and variable.

No case reaches a network call: a batch is built or refused, nothing else.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from test_request_inputs import BAD, PASSWORD, action_error

from cpi_cert_rotate.action.inputs import INPUTS, build_targets
from cpi_cert_rotate.action.inputs import dialect as action_dialect
from cpi_cert_rotate.cli import main, rotate_cmd
from cpi_cert_rotate.cli.spelling import dialect as cli_dialect
from cpi_cert_rotate.errors import ExitCode, InputError
from cpi_cert_rotate.fleet.batch import worst
from cpi_cert_rotate.models import Strategy
from cpi_cert_rotate.request.fields import DEFAULTS
from cpi_cert_rotate.request.rules import TARGETS_FILE_MAX
from cpi_cert_rotate.request.targets import Batch, Document, build_batch, document
from cpi_cert_rotate.request.targets_file import KEYS, TARGET_NAMES
from pki_factory import Pki, client_pki, key_pem, pem

KEY_VAR = "ORDERS_KEY"


@pytest.fixture(scope="module")
def pki() -> Pki:
    return client_pki()


def _outer(**changes: str) -> dict[str, str | bytes]:
    """The Action's inputs as the runner passes them: defaults, the login, no app."""
    values: dict[str, str | bytes] = dict.fromkeys(INPUTS, "")
    values.update({k: v for k, v in DEFAULTS.items() if k in INPUTS})
    values.update(
        {"cf-api": "https://api.cf.example", "cf-username": "tech-user", "cf-password": PASSWORD}
    )
    values.update({k.replace("_", "-"): v for k, v in changes.items()})
    return values


class Files:
    """A folder with a chain file, and a process environment with the key."""

    def __init__(self, pki: Pki, tmp_path: Path) -> None:
        self.base = tmp_path
        (tmp_path / "certs").mkdir()
        (tmp_path / "certs" / "orders.pem").write_bytes(pem(*pki.env_chain))
        self.key_pem = key_pem(pki.leaf.key).decode()
        self.env = {KEY_VAR: self.key_pem}
        self.masked: list[str] = []

    def batch(self, text: str, **outer: str) -> Batch:
        doc = Document(text, "targets.yml", self.base)
        return build_batch(
            _outer(**outer), action_dialect({}), doc, env=self.env, mask=self.masked.append
        )

    def error(self, text: str, **outer: str) -> InputError:
        with pytest.raises(InputError) as caught:
            self.batch(text, **outer)
        return caught.value


@pytest.fixture
def files(pki: Pki, tmp_path: Path) -> Files:
    return Files(pki, tmp_path)


MATERIAL = "cert-chain-file: certs/orders.pem\n    private-key-env: ORDERS_KEY"


def _target(app: str = "orders", extra: str = "") -> str:
    lines = f"  - org: acme\n    space: prod\n    app: {app}\n    instance: cpi-rt\n    {MATERIAL}"
    return lines + (f"\n    {extra}" if extra else "") + "\n"


def _problems(error: InputError) -> list[tuple[str, str]]:
    return [(p.code, str(p)) for p in error.problems]


class TestShape:
    def test_every_problem_of_the_file_is_reported_at_once_with_its_line(
        self, files: Files
    ) -> None:
        text = (
            "defaults:\n"  # 1
            "  strategy: swap\n"  # 2
            "  stratgy: swap\n"  # 3
            "targets:\n"  # 4
            "  - org: acme\n"  # 5
            "    space: prod\n"  # 6
            "    app: orders\n"  # 7
            "    instance: cpi-rt\n"  # 8
            "    cf-org: acme\n"  # 9
            "    private-key: not-a-real-key-but-never-shown\n"  # 10
            "    force:\n"  # 11
            "    timeout: [1, 2]\n"  # 12
            "    app: invoices\n"  # 13
            "  - org: acme\n"  # 14
            "    app: billing\n"  # 15
            "  - just-text\n"  # 16
            "  - {org: acme, space: prod, app: orders, instance: cpi-rt, cf-api: https://x}\n"  # 17
            "extra: 1\n"  # 18
        )
        error = files.error(text)
        assert error.code == "invalid-inputs"
        found = _problems(error)
        expected = [
            ("bad-targets-file", "targets.yml line 18: unknown top-level key `extra:`"),
            ("unknown-target-key", "targets.yml line 3: unknown key `stratgy:`: did you mean "),
            ("unknown-target-key", "targets.yml line 9: unknown key `cf-org:`: did you mean `org"),
            ("secret-in-targets", "targets.yml line 10: `private-key:`: keys, passwords"),
            ("bad-targets-file", "targets.yml line 11: `force:` has no value"),
            ("bad-targets-file", "targets.yml line 12: `timeout:` must be one value"),
            ("bad-targets-file", "targets.yml line 13: `app:` is given twice (also line 7)"),
            ("bad-targets-file", "targets.yml line 16: a target must be a mapping"),
            ("run-setting-in-targets", "targets.yml line 17: `cf-api:` belongs to the whole run"),
            ("missing-input", "targets.yml line 14: the target does not say its `space:`, "
             "`instance:`"),
            ("duplicate-target", "targets.yml line 17: acme/prod/orders is also the target at "
             "line 5"),
            ("missing-material", "targets.yml line 5 (acme/prod/orders): no certificate: "
             "`cert-chain-file:`/`cert-chain-env:`/`private-key-file:`/`private-key-env:` "
             "or `vault-addr:` are all empty"),
        ]  # fmt: skip
        assert len(found) == len(expected), found
        for code, start in expected:
            assert any(c == code and m.startswith(start) for c, m in found), (code, start, found)
        assert "never-shown" not in str(error) + error.hint()

    def test_not_yaml_names_the_line_and_never_echoes_it(self, files: Files) -> None:
        error = files.error("targets:\n  - org: acme\n  space: [MIIEvQIBADANBgkqhkiG9w0B: x\n")
        (problem,) = error.problems
        assert problem.code == "bad-targets-file"
        assert str(problem).startswith("targets.yml line 3: not valid YAML")
        assert "MIIEvQ" not in str(error) + error.hint()

    @pytest.mark.parametrize(
        ("text", "says"),
        [
            ("", "targets.yml: must be a mapping"),
            ("- a\n- b\n", "targets.yml line 1: must be a mapping"),
            ("defaults: {}\n", "targets.yml: holds no targets"),
            ("targets: []\n", "targets.yml line 1: holds no targets"),  # was 0 targets, exit 0
            ("include: []\n", "targets.yml line 1: holds no targets"),
            ("targets:\n  - <<: {org: acme}\n", "line 2: YAML merge keys (`<<:`) are not read"),
            ("targets: {org: acme}\n", "targets.yml line 1: `targets:` must be a list"),
            ("targets: []\ninclude: []\n", "`targets:` and `include:` are the same list"),
            ("targets:\n" + "  - {}\n" * 1001, "lists 1001 targets; at most 1000"),
        ],
    )
    def test_a_file_of_the_wrong_shape_says_what_shape(
        self, files: Files, text: str, says: str
    ) -> None:
        error = files.error(text)
        assert any(says in str(p) for p in error.problems), _problems(error)

    def test_one_app_twice_is_refused_at_its_second_line(self, files: Files) -> None:
        error = files.error("targets:\n" + _target() + _target("ORDERS"))
        (problem,) = error.problems
        assert problem.code == "duplicate-target"
        assert str(problem).startswith(
            "targets.yml line 8: acme/prod/ORDERS is also the target at line 2"
        )

    @pytest.mark.parametrize(
        ("app", "escaped"),
        [
            ("\\e[2Jorders", "\\x1b[2Jorders"),  # ESC: a terminal would clear its screen
            ("orders\\u202e", "orders\\u202e"),  # RIGHT-TO-LEFT OVERRIDE: reverses the rest
            ("orders\\u200b", "orders\\u200b"),  # ZERO WIDTH SPACE: invisible
        ],
        ids=["esc", "bidi", "zero-width"],
    )
    def test_a_target_named_with_characters_a_terminal_acts_on_is_shown_escaped(
        self, files: Files, app: str, escaped: str
    ) -> None:
        """The duplicate is found before the names are checked (`bad-text`): its message
        and the label of every other problem show the name escaped, never raw."""
        target = f'  - {{org: acme, space: prod, app: "{app}", instance: cpi-rt}}\n'
        error = files.error("targets:\n" + target + target)
        text = str(error) + error.hint()
        assert f"acme/prod/{escaped} is also the target at line 2" in text
        assert not any(c in text for c in "\x1b\u202e\u200b")

    @pytest.mark.parametrize(
        ("key", "fix"),
        [  # were `unknown key`; `cf-oidc-audience:` even suggested `vault-audience:`
            ("cf-oidc: user", "One login serves every target"),
            ("cf-oidc-audience: uaa-audience", "One login serves every target"),
            ("cf-oidc-exchange-url: https://ias.example/oauth2/token", "One login serves"),
            ("cf-oidc-exchange-client-id: 0a1b", "One login serves every target"),
            ("cf-assertion-env: CI_TOKEN", "One login serves every target"),
            ("cf-password-env: CF_PW", "One login serves every target"),
            ("vault-jwt-env: CI_TOKEN", "Give it beside the targets file"),
            ("trusted-roots: roots.pem", "Give it beside the targets file"),
        ],
    )
    def test_a_setting_of_the_whole_run_in_a_target_says_so(
        self, files: Files, key: str, fix: str
    ) -> None:
        error = files.error("targets:\n" + _target(extra=key))
        (problem,) = error.problems
        assert problem.code == "run-setting-in-targets"
        assert f"`{key.partition(':')[0]}:` belongs to the whole run" in str(problem)
        assert fix in problem.fix
        assert "vault-audience" not in str(problem) + problem.fix

    def test_the_app_inputs_beside_targets_are_refused(self, files: Files) -> None:
        error = files.error("targets:\n" + _target(), app="orders", cf_org="acme")
        codes = [(p.code, str(p)) for p in error.problems]
        assert codes == [
            ("ambiguous-target", "input `cf-org` is set beside `targets`: the targets file "
             "names every app"),
            ("ambiguous-target", "input `app` is set beside `targets`: the targets file names "
             "every app"),
        ]  # fmt: skip


TEXT_KEYS = {name for name, key in KEYS.items() if key.how == "text"} - set(TARGET_NAMES)
TARGET_CASES = [
    (n, v, c) for n, v, c in BAD if n in TEXT_KEYS and v.isprintable() and "\\" not in v
]


@pytest.mark.parametrize(
    ("name", "value", "code"), TARGET_CASES, ids=[f"{n}={v[:24]!r}" for n, v, _ in TARGET_CASES]
)
def test_a_targets_value_meets_exactly_the_single_runs_rule(
    name: str, value: str, code: str, files: Files, pki: Pki
) -> None:
    """The table of bad single-run values (test_request_inputs.BAD), given to a target."""
    assert len(TARGET_CASES) >= 25
    error = files.error("targets:\n" + _target(extra=f"{name}: {json.dumps(value)}"))
    (problem,) = error.problems
    assert problem.code == code
    if name in INPUTS:
        assert action_error(pki, **{name: value}).problems[0].code == code
    message = str(problem)
    assert message.startswith("targets.yml line 2 (acme/prod/orders): ")
    assert f"`{name}:` (line 8)" in message
    assert PASSWORD not in message + problem.fix


def test_a_problem_every_target_inherits_is_reported_once(files: Files) -> None:
    text = "defaults:\n  renew-before: soon\ntargets:\n" + _target() + _target("invoices")
    (problem,) = files.error(text).problems
    assert problem.code == "bad-renew-before"
    assert str(problem).startswith("targets.yml, every target: `renew-before:` (line 2)")


class TestLayers:
    def test_target_over_defaults_over_the_adapters_values(self, files: Files) -> None:
        text = (
            "defaults:\n  strategy: swap\n  verify-path: /http/ping\ntargets:\n"
            + _target()
            + _target("invoices", "strategy: overlap\n    verify-url: https://cpi.example/x")
        )
        batch = files.batch(text, renew_before="14d", parallel="2")
        orders, invoices = (t.settings.request for t in batch.targets)
        assert [t.label for t in batch.targets] == ["acme/prod/orders", "acme/prod/invoices"]
        assert [t.line for t in batch.targets] == [5, 11]
        assert (orders.strategy, orders.verify_path, orders.verify_url) == (
            Strategy.SWAP,
            "/http/ping",
            None,
        )
        # a target's verify-url replaces the verify-path it inherits (they exclude each other)
        assert (invoices.strategy, invoices.verify_path, invoices.verify_url) == (
            Strategy.OVERLAP,
            None,
            "https://cpi.example/x",
        )
        assert str(orders.renew_before) == str(invoices.renew_before) == "14d"
        assert batch.parallel == 2
        assert (orders.target.org, orders.target.space, orders.target.service_instance) == (
            "acme",
            "prod",
            "cpi-rt",
        )

    def test_a_target_with_its_own_material_replaces_an_inherited_issuer(
        self, files: Files
    ) -> None:
        text = (
            "defaults:\n  vault-addr: https://vault.example:8200\n  vault-role: cpi\n"
            "  vault-token-env: VAULT_TOKEN\n  key-type: ec-p256\ntargets:\n"
            "  - {org: acme, space: prod, app: issued, instance: cpi-rt}\n" + _target()
        )
        files.env["VAULT_TOKEN"] = "hvs.token-from-env"
        issued, given = (t.settings.request for t in files.batch(text).targets)
        assert issued.issuer is not None
        assert not issued.chain
        assert given.issuer is None
        assert given.chain
        assert given.key is not None
        assert "hvs.token-from-env" in files.masked

    def test_a_target_with_an_issuer_replaces_inherited_material(
        self, files: Files, pki: Pki
    ) -> None:
        outer = {"cert-chain": pem(*pki.env_chain).decode(), "private-key": files.key_pem}
        text = (
            "targets:\n  - {org: acme, space: prod, app: shared, instance: cpi-rt}\n"
            "  - {org: acme, space: prod, app: issued, instance: cpi-rt,\n"
            "     vault-addr: 'https://vault.example', vault-role: cpi, vault-token-env: TOK}\n"
        )
        files.env["TOK"] = "hvs.x-token"
        shared, issued = (t.settings.request for t in files.batch(text, **outer).targets)
        assert shared.chain
        assert shared.issuer is None
        assert issued.issuer is not None
        assert not issued.chain

    def test_material_files_start_at_the_files_folder_and_keys_are_masked(
        self, files: Files, pki: Pki
    ) -> None:
        (request,) = (t.settings.request for t in files.batch("targets:\n" + _target()).targets)
        assert request.chain == pki.env_chain
        assert files.key_pem in files.masked  # the variable's value, before any other use
        body = files.key_pem.splitlines()[1]
        assert any(body in form for form in files.masked)

    @pytest.mark.parametrize(
        ("chain", "key", "code", "says"),
        [
            ("cert-chain-file: certs/missing.pem", "private-key-env: ORDERS_KEY",
             "unreadable-input", "targets.yml line 7: `cert-chain-file:`: cannot read"),
            ("cert-chain-file: certs/orders.pem", "private-key-env: NOT_EXPORTED",
             "missing-input", "line 8: the environment variable that `private-key-env:` names"),
            ("cert-chain-file: certs/orders.pem", "private-key-env: 'MIIEv=='",
             "bad-env-var-name", "line 8: `private-key-env:` must be the name of"),
            ("cert-chain-file: certs/orders.pem", "cert-chain-env: ORDERS_KEY",
             "ambiguous-material", "line 8: `cert-chain-env:` and `cert-chain-file:` (line 7)"),
        ],
    )  # fmt: skip
    def test_material_that_cannot_be_read_is_a_problem_at_its_line(
        self, files: Files, chain: str, key: str, code: str, says: str
    ) -> None:
        text = (
            "targets:\n  - org: acme\n    space: prod\n    app: orders\n    instance: cpi-rt\n"
            f"    verify-path: /http/ping\n    {chain}\n    {key}\n"
        )
        error = files.error(text)
        assert any(p.code == code and says in str(p) for p in error.problems), _problems(error)
        assert "MIIEv" not in str(error) + error.hint()


def test_the_scans_matrix_output_is_a_targets_file(files: Files) -> None:
    """`scan --matrix` writes `{"include": [...]}` on one line; with the adapter's
    `dry-run` and no material each target only checks its live certificate."""
    due = {
        "include": [
            {"org": "acme", "space": "prod", "app": a, "instance": "cpi-rt",
             "environment": f"cpi-{a}"}
            for a in ("orders", "invoices")
        ]
    }  # fmt: skip
    doc = document(json.dumps(due), "input `targets`", files.base)
    assert doc.source == "input `targets`"
    batch = build_batch(_outer(dry_run="true"), action_dialect({}), doc, env={})
    assert [t.label for t in batch.targets] == ["acme/prod/orders", "acme/prod/invoices"]
    assert all(t.settings.request.dry_run for t in batch.targets)


def test_the_input_is_a_path_unless_it_is_yaml(files: Files) -> None:
    (files.base / "fleet").mkdir()
    (files.base / "fleet" / "t.yml").write_text("targets:\n" + _target())
    (files.base / "fleet" / "certs").symlink_to(files.base / "certs")
    doc = document("fleet/t.yml", "input `targets`", files.base)
    assert (doc.source, doc.base) == ("fleet/t.yml", files.base / "fleet")
    assert doc.text.startswith("targets:")
    inline = document("targets:\n" + _target(), "input `targets`", files.base)
    assert (inline.source, inline.base) == ("input `targets`", files.base)
    for one_line in (  # the runner trims an input: YAML on one line has no line break
        "targets: [{org: acme, space: prod, app: orders, instance: cpi-rt}]",
        "include: []",
        "defaults: {strategy: swap}",
    ):
        assert document(one_line, "input `targets`", files.base).text == one_line
    with pytest.raises(InputError, match="cannot read") as caught:
        document("nope.yml", "input `targets`", files.base)
    assert caught.value.code == "unreadable-input"
    (files.base / "big.yml").write_bytes(b"#" * (TARGETS_FILE_MAX + 1))
    with pytest.raises(InputError) as caught:
        document("big.yml", "input `targets`", files.base)
    assert caught.value.code == "input-too-large"


def test_the_action_reads_a_workspace_path(files: Files, monkeypatch: pytest.MonkeyPatch) -> None:
    (files.base / "targets.yml").write_text("targets:\n" + _target())
    monkeypatch.chdir(files.base)
    masked: list[str] = []
    inputs = {k: str(v) for k, v in _outer(targets="targets.yml").items()}
    batch = build_targets(inputs, files.env, masked.append)
    assert [t.label for t in batch.targets] == ["acme/prod/orders"]
    assert files.key_pem in masked


class TestCli:
    def _parse(self, *argv: str) -> argparse.Namespace:
        parser = argparse.ArgumentParser()
        rotate_cmd.add_arguments(parser)
        return parser.parse_args(list(argv))

    def test_flags_are_every_targets_defaults_and_name_their_flag(
        self, files: Files, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        path = files.base / "targets.yml"
        path.write_text("targets:\n" + _target() + _target("invoices", "strategy: restage"))
        monkeypatch.setenv(KEY_VAR, files.key_pem)
        monkeypatch.setenv("CF_PW", PASSWORD)
        args = self._parse(
            "--cf-api", "https://api.cf.example", "--cf-username", "u", "--cf-password-env",
            "CF_PW", "--targets", str(path), "--strategy", "swap", "--timeout", "30",
        )  # fmt: skip
        values, used, jwt = rotate_cmd.values_from_args(args)
        doc = Document(path.read_text(), str(path), path.parent)
        with pytest.raises(InputError) as caught:
            build_batch(values, cli_dialect(used), doc, env={KEY_VAR: files.key_pem}, jwt=jwt)
        (problem,) = caught.value.problems
        assert problem.code == "bad-number"
        assert str(problem).startswith(f"{path}, every target: `--timeout` must be")

    def test_a_bad_file_exits_2_with_one_error_line_per_problem(
        self, files: Files, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        path = files.base / "targets.yml"
        path.write_text("targets:\n" + _target(extra="strategy: fastest") + "  - 3\n")
        monkeypatch.setenv(KEY_VAR, files.key_pem)
        monkeypatch.setenv("CF_PW", PASSWORD)
        argv = ["rotate", "--cf-api", "https://api.cf.example", "--cf-username", "u",
                "--cf-password-env", "CF_PW", "--targets", str(path)]  # fmt: skip
        assert main(argv) == 2
        err = capsys.readouterr().err.splitlines()
        errors = [line for line in err if line.startswith("error: ")]
        assert errors == [
            f"error: {path} line 9: a target must be a mapping (`org:`, `space:`, `app:`, "
            "`instance:`, ...) [bad-targets-file]",
            f"error: {path} line 2 (acme/prod/orders): `strategy:` (line 8) must be one of "
            "`auto`, `overlap`, `swap`, `in-place`, `restage`, not 'fastest' [bad-strategy]",
        ]
        assert main([*argv, "--json"]) == 2
        problems = json.loads(capsys.readouterr().out)["problems"]
        assert [p["code"] for p in problems] == ["bad-targets-file", "bad-strategy"]


def test_the_runs_exit_code_is_3_then_1_then_2_then_0() -> None:
    ok, failed, bad, split = (
        ExitCode.OK,
        ExitCode.FAILED,
        ExitCode.BAD_INPUT,
        (ExitCode.ROLLBACK_INCOMPLETE),
    )
    assert worst([]) is ok
    assert worst([ok, ok]) is ok
    assert worst([ok, bad]) is bad
    assert worst([bad, failed, ok]) is failed  # a re-run may fix the failure: say 1
    assert worst([failed, split, bad]) is split


def test_the_docs_example_file_builds_as_documented(files: Files, pki: Pki) -> None:
    """docs/fleet.md's example targets file, with the files and variables it names."""
    root = Path(__file__).resolve().parents[2]
    page = (root / "docs" / "fleet.md").read_text()
    text = page.split("```yaml\n# cpi/targets.yml\n", 1)[1].split("```", 1)[0]
    for name in ("billing-chain.pem", "test-chain.pem"):
        (files.base / "certs" / name).write_bytes(pem(*pki.env_chain))
    files.env.update(
        {"VAULT_TOKEN": "hvs.docs-token", "BILLING_KEY": files.key_pem,
         "BILLING_KEY_PASS": "not-needed", "TEST_KEY": files.key_pem}
    )  # fmt: skip
    batch = files.batch(text)
    requests = {t.label: t.settings.request for t in batch.targets}
    assert list(requests) == [
        "acme-prod/integration/orders-sender",
        "acme-prod/integration/invoices-sender",
        "acme-prod/finance/billing-sender",
        "acme-test/integration/orders-sender",
    ]
    orders, invoices, billing, test = requests.values()
    assert orders.issuer is not None
    assert (invoices.strategy, invoices.chain_env_var, invoices.key_env_var) == (
        Strategy.SWAP,
        "INVOICE_CHAIN",
        "INVOICE_KEY",
    )
    assert billing.issuer is None
    assert billing.target.service_instance == "cpi-finance"
    assert str(billing.renew_before) == "45d"
    assert test.dry_run
    assert test.issuer is None
    billing_run = batch.targets[2]
    assert any("not encrypted" in w for w in billing_run.settings.warnings)


def test_the_summary_keeps_every_failed_section_within_githubs_size() -> None:
    from cpi_cert_rotate.action import targets

    ok, failed = ExitCode.OK, ExitCode.FAILED
    section = "x" * (targets.SUMMARY_BUDGET // 3)
    kept = targets._within_budget([section] * 5, [ok, failed, ok, ok, failed], used=0)
    assert kept.count(section) == 4  # ok, failed, ok within the budget; then the last failed
    assert "1 section(s) of targets that ended well are left out" in kept
    assert len(kept.encode()) < 1024 * 1024 + len(section)
