"""The console's translation hook: every user-facing string goes through `_()`.

Today it answers the English text; the Babel catalogs (`tenantry/locale/`) plug in here later
by replacing `gettext` (templates call the same `_` as a Jinja global).
"""

from __future__ import annotations


def gettext(message: str, **values: object) -> str:
    """The message in the reader's language (English for now), with `%(name)s` values filled."""
    return message % values if values else message


_ = gettext
