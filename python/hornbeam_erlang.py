"""The hornbeam module under the name used by the Erlang Hornbeam, so apps
written for it run unchanged."""

from hornbeam import *  # noqa: F401,F403
from hornbeam import __all__  # noqa: F401
