"""Shared field types of the JSON API."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

Email = Annotated[str, Meta(min_length=3, max_length=320, description="An email address.")]


Password = Annotated[str, Meta(min_length=1, max_length=1024)]


Name = Annotated[str, Meta(min_length=1, max_length=80)]


Alias = Annotated[str, Meta(min_length=1, max_length=40, description="2-40 letters, digits, spaces, . _ -")]


Id = Annotated[str, Meta(min_length=1, max_length=64)]


Reason = Annotated[str, Meta(max_length=500)]
