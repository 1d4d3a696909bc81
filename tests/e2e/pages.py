"""Helpers for reading the portal's HTML in HTTP tests."""

from __future__ import annotations

import re


def section(html: str, category: str) -> str:
    match = re.search(rf'<section class="category" aria-labelledby="h-{category}">(.*?)</section>',
                      html, re.S)
    assert match, category
    return match.group(1)


def csrf(html: str) -> str:
    token = re.search(r'name="_csrf_token" value="([^"]+)"', html)
    assert token
    return token.group(1)
