"""The project's settings, with secrets of the test suite's own.

config.settings refuses the published development secrets unless DEBUG is on; tests run with
DEBUG off, as production does, so they bring their own. They go into the environment, not just
into these settings: the processes tests start (the browser tests' live server, workers) load
config.settings themselves and inherit this environment.
"""

import os

os.environ.setdefault("SECRET_KEY", "test-suite-only-secret-key-0f9e8d7c6b5a")
os.environ.setdefault("TWILIO_AUTH_TOKEN", "test-suite-only-twilio-auth-token")

from config.settings import *  # noqa: E402, F403
