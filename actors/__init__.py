"""actors: an actor-model messaging runtime on trio and Redis.

Every subscriber is an actor with a Redis-backed mailbox (a list, a stream
consumer group, or a pub/sub channel), run under supervision trees with Erlang/OTP
semantics. The public API is re-exported here from private modules.
"""

from transports import DeadLetter as DeadLetter
from transports import Failure as Failure
from transports import MailboxSpec as MailboxSpec

from ._actor import Actor as Actor
from ._actor import handler as handler
from ._backoff import Backoff as Backoff
from ._codec import converter as converter
from ._exceptions import (
    ActorsError as ActorsError,
)
from ._exceptions import (
    AskTimeout as AskTimeout,
)
from ._exceptions import (
    AuthenticationError as AuthenticationError,
)
from ._exceptions import (
    BrokenConnectionError as BrokenConnectionError,
)
from ._exceptions import (
    ClosedError as ClosedError,
)
from ._exceptions import (
    CodecError as CodecError,
)
from ._exceptions import (
    CommandError as CommandError,
)
from ._exceptions import (
    ConfigurationError as ConfigurationError,
)
from ._exceptions import (
    ConnectError as ConnectError,
)
from ._exceptions import (
    Drop as Drop,
)
from ._exceptions import (
    MessageFate as MessageFate,
)
from ._exceptions import (
    Reject as Reject,
)
from ._exceptions import (
    RemoteError as RemoteError,
)
from ._exceptions import (
    Retry as Retry,
)
from ._exceptions import (
    SupervisorError as SupervisorError,
)
from ._exceptions import (
    SystemFileError as SystemFileError,
)
from ._exceptions import (
    TransportError as TransportError,
)
from ._exceptions import (
    TransportTimeout as TransportTimeout,
)
from ._mailbox import (
    channel_mailbox as channel_mailbox,
)
from ._mailbox import (
    list_mailbox as list_mailbox,
)
from ._mailbox import (
    stream_mailbox as stream_mailbox,
)
from ._supervision import Supervisor as Supervisor
from ._system import (
    ActorContext as ActorContext,
)
from ._system import (
    ActorSystem as ActorSystem,
)
from ._system import (
    MessageInfo as MessageInfo,
)
from ._tree import ChildInfo as ChildInfo
from ._tree import ChildSpec as ChildSpec
from ._tree import ChildState as ChildState

__version__ = "0.1.0"
