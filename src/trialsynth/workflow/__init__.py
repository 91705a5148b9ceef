"""What the commands do (fit, run, fit --from), returning objects."""
