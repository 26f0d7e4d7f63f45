"""Certificate material: read every real-world format, validate completely, convert.

`material` knows nothing of Cloud Foundry or GitHub. It reads chains and keys
(`parse`), reports every problem with a stable code (`validate`, codes in
`problems.PROBLEMS`), produces the forms CF and the app need (`convert`), generates
keys and CSRs (`keys`) and lists every spelling of a key for masking (`masking`).
Nothing here writes a file: the private key exists only as an object or string in
memory.

    chain = material.load_chain(chain_bytes)
    key = material.load_key(key_bytes, passphrase=pw)
    result = material.validate(chain, key, trusted_roots=roots)
    material.raise_for_problems(result)
    material.bind_json(result.leaf), material.env_chain_pem(result)
"""

from .convert import (
    KEY_TYPE_EXTERNAL,
    bind_json,
    binding_parameters,
    env_chain_pem,
    facts,
    fingerprint,
    leaf_pem,
    manifest_oneline,
    manifest_snippet,
)
from .keys import (
    KEY_KINDS,
    build_csr,
    describe_public_key,
    generate_key,
    is_supported_key_type,
    key_kind_of,
    key_matches,
    key_pkcs8_pem,
)
from .masking import secret_forms, secret_lines
from .parse import Material, load_chain, load_key, load_material, load_pkcs12
from .problems import PROBLEMS, Problem, ProblemSpec, Severity, problem_from_error
from .validate import Validation, raise_for_problems, validate

__all__ = [
    "KEY_KINDS",
    "KEY_TYPE_EXTERNAL",
    "PROBLEMS",
    "Material",
    "Problem",
    "ProblemSpec",
    "Severity",
    "Validation",
    "bind_json",
    "binding_parameters",
    "build_csr",
    "describe_public_key",
    "env_chain_pem",
    "facts",
    "fingerprint",
    "generate_key",
    "is_supported_key_type",
    "key_kind_of",
    "key_matches",
    "key_pkcs8_pem",
    "leaf_pem",
    "load_chain",
    "load_key",
    "load_material",
    "load_pkcs12",
    "manifest_oneline",
    "manifest_snippet",
    "problem_from_error",
    "raise_for_problems",
    "secret_forms",
    "secret_lines",
    "validate",
]
