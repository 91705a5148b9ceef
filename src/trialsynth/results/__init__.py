"""Result types: one per engine behind one interface (draws, summary, ask, save/load).

Importing the package registers both result types, so :meth:`FitResult.load` can read a
folder written by either engine.
"""

from trialsynth.results.base import FitResult
from trialsynth.results.exact import ExactFit
from trialsynth.results.mcmc import McmcFit
from trialsynth.results.provenance import ResultError

__all__ = ["ExactFit", "FitResult", "McmcFit", "ResultError"]
