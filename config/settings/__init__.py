"""Settings package: ``config.settings`` is the local/default profile, ``.production`` the deploy one."""

from .base import *  # noqa: F403
