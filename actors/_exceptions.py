"""The exception tree of actors, re-exported from the transport layer.

The tree is defined once, in :mod:`transports._exceptions` (the lowest layer, so
that transports never import the runtime); see its docstring for the drawing.
"""

from transports._exceptions import (
    ActorsError as ActorsError,
)
from transports._exceptions import (
    AskTimeout as AskTimeout,
)
from transports._exceptions import (
    AuthenticationError as AuthenticationError,
)
from transports._exceptions import (
    BrokenConnectionError as BrokenConnectionError,
)
from transports._exceptions import (
    ClosedError as ClosedError,
)
from transports._exceptions import (
    CodecError as CodecError,
)
from transports._exceptions import (
    CommandError as CommandError,
)
from transports._exceptions import (
    ConfigurationError as ConfigurationError,
)
from transports._exceptions import (
    ConnectError as ConnectError,
)
from transports._exceptions import (
    Drop as Drop,
)
from transports._exceptions import (
    MessageFate as MessageFate,
)
from transports._exceptions import (
    Reject as Reject,
)
from transports._exceptions import (
    RemoteError as RemoteError,
)
from transports._exceptions import (
    Retry as Retry,
)
from transports._exceptions import (
    SupervisorError as SupervisorError,
)
from transports._exceptions import (
    SystemFileError as SystemFileError,
)
from transports._exceptions import (
    TransportError as TransportError,
)
from transports._exceptions import (
    TransportTimeout as TransportTimeout,
)
