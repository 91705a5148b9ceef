"""Numerical core: errors, settings, files, effect sizes, classical estimators, quadrature.

numpy/scipy only; nothing here knows of PyMC, files formats of results or the CLI.
"""
