"""Cloud Foundry v3 + UAA client on `requests` (see `client.CfClient`).

`http` holds the transport rules (timeouts, retries, errors, warnings), `auth` the UAA
tokens, `resources` the typed shapes, `polling` the waits, `client` the calls. Nothing
here knows about certificates or GitHub, and no raw JSON leaves the package except a
binding's broker-defined `credentials`.
"""

from ..errors import CfApiError, CfJobFailed, CfTimeout, CfUnreachable
from .client import MIN_VERSION_BINDING_STRATEGY, MIN_VERSION_DEPLOYMENT_OPTIONS, CfClient
from .resources import (
    App,
    Binding,
    BindingListing,
    Build,
    Deployment,
    Job,
    JobError,
    Org,
    Package,
    RootInfo,
    ServiceInstance,
    Space,
    SpaceListing,
)

__all__ = [
    "MIN_VERSION_BINDING_STRATEGY",
    "MIN_VERSION_DEPLOYMENT_OPTIONS",
    "App",
    "Binding",
    "BindingListing",
    "Build",
    "CfApiError",
    "CfClient",
    "CfJobFailed",
    "CfTimeout",
    "CfUnreachable",
    "Deployment",
    "Job",
    "JobError",
    "Org",
    "Package",
    "RootInfo",
    "ServiceInstance",
    "Space",
    "SpaceListing",
]
