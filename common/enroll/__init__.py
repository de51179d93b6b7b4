"""Enrollment with the control plane, shared by ingress nodes and edge agents (docs/enrollment.md).

`kokoa ingress run --control URL --token T` and `kokoa edge run --control URL --token T`:

- `ensure_enrolled(StateDir(dir), ControlClient(url, ca_file=…), kind, token)`: a local P-256
  key, a CSR, the token redeemed for a certificate; key (0600), certificate and CA bundle kept
  in the state directory. Later starts find them there and need no token; a token the
  directory has not used yet enrolls it again.
- `Renewer(state, client).run(on_renewed)`: renews in the background at 2/3 of the lifetime,
  proving possession of the current key; `on_renewed(tls)` swaps the certificate for new
  connections.

`messages` and `proof` are the wire format, shared with the control plane. Nothing here is
imported by a standalone (`--control`-less) node or agent.
"""

from common.enroll.client import ControlClient, EnrollError, check_control_url
from common.enroll.messages import Credentials, Kind, Subject
from common.enroll.renewal import Renewer
from common.enroll.start import (
    ControlOptions,
    Started,
    default_state_dir,
    ensure_enrolled,
    start,
)
from common.enroll.state import Enrollment, StateDir

__all__ = [
    "ControlClient",
    "ControlOptions",
    "Credentials",
    "EnrollError",
    "Enrollment",
    "Kind",
    "Renewer",
    "Started",
    "StateDir",
    "Subject",
    "check_control_url",
    "default_state_dir",
    "ensure_enrolled",
    "start",
]
