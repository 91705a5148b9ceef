"""Figures and the report (jinja2 templates)."""
