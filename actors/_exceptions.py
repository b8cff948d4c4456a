"""The exception tree of actors, re-exported from the transport layer.

The tree is defined once, in :mod:`transports._exceptions` (the lowest layer, so
that transports never import the runtime); see its docstring for the drawing.
"""

from transports._exceptions import (
    ActorsError as ActorsError,
    AskTimeout as AskTimeout,
    AuthenticationError as AuthenticationError,
    BrokenConnectionError as BrokenConnectionError,
    ClosedError as ClosedError,
    CodecError as CodecError,
    CommandError as CommandError,
    ConfigurationError as ConfigurationError,
    ConnectError as ConnectError,
    Drop as Drop,
    MessageFate as MessageFate,
    Reject as Reject,
    RemoteError as RemoteError,
    ReplayError as ReplayError,
    Retry as Retry,
    SupervisorError as SupervisorError,
    SystemFileError as SystemFileError,
    TransportError as TransportError,
    TransportTimeout as TransportTimeout,
    UnavailableError as UnavailableError,
)
