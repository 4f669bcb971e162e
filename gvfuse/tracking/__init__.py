"""Offset tracking: the maths behind the bundled tracker plugins, as plain functions."""
