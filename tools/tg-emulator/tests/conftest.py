# The emulator's own fixtures (other projects: pytest_plugins = ["tg_emulator.testing"] in a root
# conftest, or import the fixtures like this).
from tg_emulator.testing import tg_client_factory, tg_emulator, tg_world  # noqa: F401
