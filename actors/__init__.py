"""actors: an actor-model messaging runtime on trio and Redis.

Every subscriber is an actor with a Redis-backed mailbox (a list, a stream
consumer group, or a pub/sub channel), run under supervision trees with Erlang/OTP
semantics. The public API is re-exported here from private modules.
"""

# First, for `python -m actors`: quiet signals while the rest imports (see _startup).
from . import _startup  # noqa: F401

# isort: split
from transports import (
    ActorsError as ActorsError,
    AuthenticationError as AuthenticationError,
    Backoff as Backoff,
    BrokenConnectionError as BrokenConnectionError,
    BrokenConsumerError as BrokenConsumerError,
    ClosedError as ClosedError,
    CommandError as CommandError,
    ConfigurationError as ConfigurationError,
    ConnectError as ConnectError,
    DeadLetter as DeadLetter,
    Failure as Failure,
    MailboxSpec as MailboxSpec,
    ReplayError as ReplayError,
    TransportError as TransportError,
    TransportTimeout as TransportTimeout,
    UnavailableError as UnavailableError,
)

from ._actor import Actor as Actor, handler as handler
from ._children import current_child_path as current_child_path
from ._codec import converter as converter
from ._codecs import Codec as Codec, JsonCodec as JsonCodec, MsgpackCodec as MsgpackCodec
from ._context import ActorContext as ActorContext, MessageInfo as MessageInfo
from ._errors import (
    AskTimeout as AskTimeout,
    CodecError as CodecError,
    LifespanError as LifespanError,
    RemoteError as RemoteError,
    SpawnError as SpawnError,
    SupervisorError as SupervisorError,
    SystemFileError as SystemFileError,
)
from ._faststream import FastStreamCodec as FastStreamCodec
from ._fates import Drop as Drop, MessageFate as MessageFate, Reject as Reject, Retry as Retry
from ._logs import JsonFormatter as JsonFormatter
from ._mailbox import (
    channel_mailbox as channel_mailbox,
    list_mailbox as list_mailbox,
    stream_mailbox as stream_mailbox,
)
from ._middleware import (
    Fate as Fate,
    Fetch as Fetch,
    Handling as Handling,
    Middleware as Middleware,
    Sending as Sending,
)
from ._pool import Pool as Pool
from ._supervision import Supervisor as Supervisor
from ._system import ActorSystem as ActorSystem
from ._tree import (
    ChildInfo as ChildInfo,
    ChildRun as ChildRun,
    ChildSpec as ChildSpec,
    ChildState as ChildState,
    Restart as Restart,
    Strategy as Strategy,
)
from ._watch import Down as Down

__version__ = "0.1.0"
