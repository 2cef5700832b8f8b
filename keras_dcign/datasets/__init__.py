"""Datasets for DC-IGN training."""
