"""The command line: parse, call the workflow, render."""

from trialsynth.cli.app import console, main

__all__ = ["console", "main"]
