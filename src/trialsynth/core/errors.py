"""The one base class of the errors a user can cause (bad data, options, specs, files).

The command line turns exactly these into a one-line message and exit code 2; any other
exception is an internal error (exit 1), never reported as the user's fault.
"""

from __future__ import annotations


class TrialsynthError(ValueError):
    """An input the toolkit cannot honour; the message is one line naming what is wrong.

    It subclasses ``ValueError`` so that code written against the earlier per-module
    errors (all ``ValueError`` subclasses) keeps working.
    """
