"""The command line's user error, in its own module so that every CLI module raises the one class.

``python -m sse_screen.screening.cli`` runs the CLI as ``__main__``; a class defined there would differ from the one
``screening.cli_generate`` or ``screening.cli_dataset`` import from ``sse_screen.screening.cli``, and their errors
would print as internal errors.
"""

from __future__ import annotations

__all__ = ["UserError"]


class UserError(Exception):
    """A problem the user can fix; printed as one line, exit code 2."""
