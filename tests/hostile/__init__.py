"""Red-team tests (issue 12): hostile, clumsy and interrupted use, one module per theme."""
