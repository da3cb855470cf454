"""Opening the store from a command: one line naming the store when it cannot be opened.

``serve``, ``keys`` and the store commands all open it here, so an unreachable server reads
the same everywhere, with any password in the URL hidden.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from recstack.cli.errors import fail, first_line
from recstack.errors import RecstackError
from recstack.settings import Settings

if TYPE_CHECKING:
    from recstack.store import Store


def masked_url(url: str) -> str:
    """The URL with any password hidden."""
    import sqlalchemy as sa

    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<invalid URL>"


def open_store(settings: Settings) -> Store:
    """The configured store (created and migrated if new); exit status 1 if it cannot open."""
    from recstack.store import Store

    try:
        return Store.from_settings(settings)
    except RecstackError:
        raise
    except Exception as exc:  # noqa: BLE001 - e.g. an unreachable server: one clear line
        fail(f"cannot open the store at {masked_url(settings.store_url)}: {first_line(exc)}")
