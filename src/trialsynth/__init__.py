"""trialsynth: Bayesian evidence synthesis of randomised trials.

Importing the package is cheap: PyMC and ArviZ are imported only by the modules
that fit models (``trialsynth.models.pymc``, ``trialsynth.engines.mcmc``).
"""

__version__ = "0.1.0"
