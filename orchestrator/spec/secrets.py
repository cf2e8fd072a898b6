"""Secrets in what is printed or written: a storage URL's password is masked wherever
it could appear (the resolved spec, error messages, driver errors)."""
from __future__ import annotations

import re

_URL_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:)\S+@")  # to the last @: a password may hold one


def mask_secrets(text: str) -> str:
    """``text`` with the password of any URL in it masked (``scheme://user:***@host``)."""
    return _URL_PASSWORD.sub(r"\1***@", text)


def mask_url(url: str | None) -> str | None:
    """A database URL with its password replaced by ***, for anything printed or written."""
    if not url:
        return url
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "<unparsable storage URL>"


def redact(text: str, url: str | None) -> str:
    """``text`` with ``url`` and its password masked (driver errors often echo them)."""
    if not url:
        return text
    text = text.replace(url, mask_url(url) or "")
    from sqlalchemy.engine import make_url

    try:
        password = make_url(url).password
    except Exception:  # noqa: BLE001 - unparsable: the URL itself is already masked
        password = None
    return text.replace(str(password), "***") if password else text
