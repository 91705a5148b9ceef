"""The local web explorer: change a prior or drop a trial and see the posterior at once.

A front-end beside :mod:`trialsynth.cli`: a Starlette app (:mod:`.server`) served by
uvicorn (:mod:`.serve`) with one static page (``static/``), over an HTTP API whose answers
are the ``fit --json`` objects of the same fit code the command line runs
(:mod:`.service`). MCMC fits run as jobs in a child process (:mod:`.jobs`).
"""
