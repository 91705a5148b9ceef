"""The command line: parse, call the workflow, render."""

from trialsynth.cli.app import main

__all__ = ["main"]
