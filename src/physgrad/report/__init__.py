"""Figures and tables (headless matplotlib)."""
