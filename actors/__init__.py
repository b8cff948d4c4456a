"""actors: an actor-model messaging runtime on trio and Redis."""

from ._exceptions import (
    ActorsError as ActorsError,
    AskTimeout as AskTimeout,
    AuthenticationError as AuthenticationError,
    BrokenConnectionError as BrokenConnectionError,
    ClosedError as ClosedError,
    CodecError as CodecError,
    CommandError as CommandError,
    ConfigurationError as ConfigurationError,
    ConnectError as ConnectError,
    RemoteError as RemoteError,
    SupervisorError as SupervisorError,
    SystemFileError as SystemFileError,
    TransportError as TransportError,
    TransportTimeout as TransportTimeout,
)
from ._backoff import Backoff as Backoff
